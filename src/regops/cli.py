"""``regops``: argparse, one function per verb, exit codes.

0 ok, 1 problems found (or a registry error), 2 usage, 3 a bug in regops, 130 Ctrl-C.
Imports of the heavy parts happen inside the verbs, so ``regops --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

from regops import __version__

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

Verb = Callable[[argparse.Namespace], int]


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _json_or(args: argparse.Namespace, value: Any, render: Callable[[Any], str]) -> int:
    from regops import report

    _out(report.to_json(value) if args.json else render(value))
    return EXIT_OK


# --- verbs ---------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    from regops import api, report

    opened = api.open_registry(args.registry)  # once: the check and the advice read the same registry
    problems = api.validate(registry=opened, base=args.base)
    warnings = api.advice(registry=opened)
    render = {"text": report.problems_text, "json": report.problems_json, "github": report.problems_github}
    text = render["json" if args.json else args.format]([*problems, *warnings])
    if text:
        _out(text)
    return EXIT_PROBLEMS if problems else EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from regops import api, report

    moment = _moment(args.at)
    rows = api.status(registry=args.registry, at=moment)
    return _json_or(args, rows, lambda r: report.status_text(r, at=moment))


def cmd_show(args: argparse.Namespace) -> int:
    from regops import api, report

    moment = _moment(args.at)
    if "@" not in args.ref:
        entry = api.show_model(args.ref, registry=args.registry)
        raw = entry.config.raw if entry.config else None
        if moment is not None:
            return _show_model_at(args, raw, entry, moment)
        return _json_or(args, raw, lambda _: report.model_text(entry.config, entry.ordered))
    record = api.show(args.ref, registry=args.registry, at=moment)
    return _json_or(args, record.raw, lambda _: report.show_text(record, at=moment))


def _moment(at: str | None) -> datetime | None:
    """An --at read once, so a relative one ("3 weeks ago") names one moment for the whole verb."""
    from regops.timespec import parse_time

    return parse_time(at) if at else None


def _show_model_at(args: argparse.Namespace, raw: Any, entry: Any, moment: datetime) -> int:
    from regops import api, report

    found = api.versions_at(args.ref, registry=args.registry, at=moment)
    stages = {r.version: stage for r, stage in found}
    value = {"model": raw, "at": moment, "versions": [{"version": v, "stage": s} for v, s in stages.items()]}
    return _json_or(args, value, lambda _: report.model_text(entry.config, [r for r, _ in found], stages=stages))


def cmd_history(args: argparse.Namespace) -> int:
    from regops import api, report

    rows = api.history(
        args.model,
        registry=args.registry,
        models=args.models or (),
        by=args.by,
        bots=args.bots,
        stage=args.stage,
        kinds=args.kinds or (),
        since=args.since,
        until=args.until,
    )
    one_model = len({args.model, *(args.models or ())} - {None}) == 1
    render = report.history_csv if args.format == "csv" else partial(report.history_text, one_model=one_model)
    return _json_or(args, rows, render)


def cmd_resolve(args: argparse.Namespace) -> int:
    from regops import api, report

    return _json_or(args, api.resolve(args.ref, registry=args.registry, at=args.at), report.resolution_text)


def cmd_lineage(args: argparse.Namespace) -> int:
    from regops import api, publish, report

    nodes = api.lineage(args.ref, registry=args.registry, at=args.at)
    render = publish.lineage_mermaid if args.format == "mermaid" else report.lineage_text
    return _json_or(args, nodes, render)


def cmd_diff(args: argparse.Namespace) -> int:
    from regops import api, report

    return _json_or(args, api.diff(args.a, args.b, registry=args.registry, at=args.at), report.diff_text)


def _plan_out(args: argparse.Namespace, plan: Any) -> int:
    from regops import report

    _out(
        report.to_json(report.plan_summary(plan, dry_run=args.dry_run))
        if args.json
        else report.plan_text(plan, dry_run=args.dry_run)
    )
    return EXIT_OK


def cmd_promote(args: argparse.Namespace) -> int:
    from regops import api

    plan = api.promote(
        args.ref, registry=args.registry, to=args.to, notes=args.notes, by=args.by, dry_run=args.dry_run, pr=args.pr
    )
    return _plan_out(args, plan)


def cmd_rollback(args: argparse.Namespace) -> int:
    from regops import api

    plan = api.rollback(
        args.model,
        registry=args.registry,
        to=args.to,
        at=args.at,
        notes=args.notes,
        by=args.by,
        dry_run=args.dry_run,
        pr=args.pr,
    )
    return _plan_out(args, plan)


def cmd_auto_promote(args: argparse.Namespace) -> int:
    from regops import api

    return _plan_out(args, api.auto_promote(args.model, registry=args.registry, by=args.by, dry_run=args.dry_run))


def cmd_canary_record(args: argparse.Namespace) -> int:
    from regops import api

    plan = api.record_canary(
        args.ref,
        registry=args.registry,
        result=args.result,
        summary=args.summary,
        dry_run=args.dry_run,
        **_signer(args),
    )
    return _plan_out(args, plan)


def cmd_canary_check(args: argparse.Namespace) -> int:
    from regops import api

    checks = api.canary_check(
        args.model,
        registry=args.registry,
        now=args.now,
        dry_run=args.dry_run,
        **_signer(args),
    )
    _canary_out(args, checks)
    # A failed or unreadable canary turns the scheduled run red: someone should look, PR or not.
    return EXIT_PROBLEMS if any(c.decision.verdict in ("fail", "inconclusive") for c in checks) else EXIT_OK


def cmd_canary_pr(args: argparse.Namespace) -> int:
    from regops import api

    # The verdicts were judged (and the run turned red) by `canary check`; here only errors fail.
    _canary_out(args, api.canary_pr(args.model, registry=args.registry, by=args.by))
    return EXIT_OK


def cmd_canary_plan(args: argparse.Namespace) -> int:
    from regops import api, report

    plans = api.canary_plan(args.model, registry=args.registry, traffic_per_hour=args.traffic_per_hour)
    return _json_or(args, plans, report.canary_plan_text)


def _canary_out(args: argparse.Namespace, checks: Sequence[Any]) -> None:
    from regops import publish, report

    render = {"text": report.canary_text, "markdown": publish.canary_markdown, "json": report.to_json}
    _out(render["json" if args.json else args.format](checks))


def cmd_restore(args: argparse.Namespace) -> int:
    from regops import api

    return _plan_out(args, api.restore(args.ref, registry=args.registry, dry_run=args.dry_run))


def cmd_pr_check(args: argparse.Namespace) -> int:
    from regops import api, report

    if args.head_sha is not None:
        return _pr_check_head(args)
    if args.merge_group is not None:
        if args.sha is None or args.base_sha is None:
            raise UsageError("--merge-group needs --sha (the group's commit) and --base-sha")
        outcome = api.pr_check_group(args.merge_group, sha=args.sha, base_sha=args.base_sha, registry=args.registry)
    else:
        outcome = api.pr_check(args.pr, registry=args.registry, status_sha=args.sha)
    _json_or(args, outcome, report.approvals_text)
    return EXIT_OK if outcome.ok else EXIT_PROBLEMS


def _no_open_pull(args: argparse.Namespace) -> int:
    return _json_or(
        args, {}, lambda _: f"no open pull request has head {args.head_sha} (it moved on; the newer run decides)"
    )


def _pr_check_head(args: argparse.Namespace) -> int:
    from regops import api, report

    if args.sha is not None:
        raise UsageError("--sha goes with --pr or --merge-group; --head-sha reports on that head")
    outcomes = api.pr_check_head(args.head_sha, registry=args.registry)
    if not outcomes:
        return _no_open_pull(args)
    _json_or(
        args,
        outcomes,
        lambda found: "\n".join(f"pull request #{n}: {report.approvals_text(o)}" for n, o in found.items()),
    )
    return EXIT_OK if all(o.ok for o in outcomes.values()) else EXIT_PROBLEMS


def cmd_pr_report(args: argparse.Namespace) -> int:
    from regops import api

    if args.head_sha is not None:
        actions = api.pr_report_head(args.head_sha, registry=args.registry)
    else:
        actions = {args.pr: api.pr_report(args.pr, registry=args.registry)[0]}
    if not actions:
        return _no_open_pull(args)
    return _json_or(
        args, actions, lambda found: "\n".join(f"pull request #{n}: regops comment {a}" for n, a in found.items())
    )


def cmd_pr_stamp(args: argparse.Namespace) -> int:
    from regops import api

    stamped = api.pr_stamp(
        registry=args.registry,
        since=args.since,
        dry_run=args.dry_run,
        **_signer(args),
    )
    return _plan_out(args, stamped)


def cmd_commit(args: argparse.Namespace) -> int:
    from regops import api

    sha = api.commit(registry=args.registry, message=args.message, push=args.push, by=args.by)
    return _json_or(
        args,
        {"commit": sha, "pushed": bool(sha and args.push)},
        lambda r: (
            f"committed {sha[:12]}" + (" and pushed" if r["pushed"] else "")
            if sha
            else "nothing changed; nothing committed"
        ),
    )


def cmd_drift(args: argparse.Namespace) -> int:
    from regops import api

    return _sync_out(args, api.drift(registry=args.registry, issue=args.issue))


def cmd_codeowners(args: argparse.Namespace) -> int:
    from regops import api

    path, changed = api.codeowners(registry=args.registry, check=args.check)
    state = "current" if not changed else "missing" if not path.exists() else "stale" if args.check else "written"
    shown = os.path.relpath(path)
    _json_or(args, {"path": path, "state": state}, lambda r: _codeowners_text(shown, state, check=args.check))
    return EXIT_PROBLEMS if changed and args.check else EXIT_OK


def _codeowners_text(shown: str, state: str, *, check: bool) -> str:
    return {
        "current": f"{shown} is current" + ("" if check else "; nothing to write"),
        "missing": f"{shown} does not exist: run `regops codeowners` to write it",
        "stale": f"{shown} is stale: run `regops codeowners`",
        "written": f"wrote {shown}",
    }[state]


def cmd_sync(args: argparse.Namespace) -> int:
    from regops import api

    return _sync_out(args, api.sync(registry=args.registry, check=args.check, model=args.model))


def _sync_out(args: argparse.Namespace, result: Any) -> int:
    from regops import report

    _out(report.to_json(report.sync_summary(result)) if args.json else report.sync_text(result))
    return EXIT_OK if result.ok else EXIT_PROBLEMS


def cmd_serving_export(args: argparse.Namespace) -> int:
    from regops import api, store

    text = api.serving_export(registry=args.registry, format="json" if args.json else args.format)
    if args.output:
        store.write_atomic(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


def cmd_site_build(args: argparse.Namespace) -> int:
    from regops import api

    pages = api.site_build(registry=args.registry, out=args.out)
    count = sum(p.suffix == ".html" for p in pages)
    index = Path(args.out) / "index.html"
    return _json_or(
        args,
        {"out": args.out, "pages": count, "index": str(index)},
        lambda r: f"{args.out}: {count} pages written; open {index}",
    )


def cmd_retention_plan(args: argparse.Namespace) -> int:
    from regops import api, report

    decisions = api.retention_plan(registry=args.registry, model=args.model, now=args.at, published=args.published)
    return _json_or(args, decisions, report.retention_text)


def cmd_retention_apply(args: argparse.Namespace) -> int:
    from regops import api, report

    def moved(decision: Any, where: str) -> None:
        verb = "moved" if decision.action == "move" else "removed the leftover hot copy of"
        sys.stderr.write(f"{verb} {decision.ref} → {where}\n")

    decisions = api.retention_apply(
        registry=args.registry, model=args.model, now=args.at, published=args.published, on_move=moved
    )
    return _json_or(args, decisions, lambda d: report.retention_text(d, applied=True))


def cmd_register(args: argparse.Namespace) -> int:
    from regops import api, report

    with _progress("hashing and storing") as progress:
        result = api.register(
            args.model,
            registry=args.registry,
            artifacts=args.artifacts,
            evals=args.evals,
            params=args.params,
            dataset=args.dataset,
            eval_dataset=args.eval_dataset,
            parent=args.parent,
            version=args.version,
            bump=args.bump,
            by=args.by,
            run_url=args.run_url,
            progress=progress,
            pr=args.pr,
            confine=args.confine,
            signing_key=args.signing_key,
            signing_cert=args.signing_cert,
            signing_keyless=args.signing_keyless,
            signing_key_env=args.signing_key_env,
        )
    return _json_or(args, result, report.register_text)


def cmd_download(args: argparse.Namespace) -> int:
    from regops import api, report

    with _progress("downloading") as progress:
        record, written = api.download(args.ref, registry=args.registry, dest=args.dest, at=args.at, progress=progress)
    return _json_or(args, {"version": record.ref, "files": written}, report.download_text)


def cmd_verify(args: argparse.Namespace) -> int:
    from regops import api, report

    chain = api.verify(args.ref, registry=args.registry, at=args.at)
    _json_or(args, chain, report.chain_text)
    return EXIT_OK if chain.ok else EXIT_PROBLEMS


def cmd_dataset_hash(args: argparse.Namespace) -> int:
    from regops import api, report

    return _json_or(args, api.dataset_hash(args.path), report.tree_hash_text)


def cmd_dataset_register(args: argparse.Namespace) -> int:
    from regops import api

    path = api.register_dataset(
        args.name,
        registry=args.registry,
        version=args.version,
        path=args.path,
        dvc=args.from_dvc,
        dvc_path=args.dvc_path,
        iceberg=args.iceberg,
        snapshot=args.snapshot,
        delta=args.delta,
        delta_version=args.delta_version,
        by=args.by,
        description=args.description,
        uri=args.uri,
    )
    return _json_or(args, {"path": path}, lambda r: f"registered {os.path.relpath(r['path'])}")


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int], None] | None]:
    """A byte counter on stderr while the block runs, when stderr is a terminal (never in CI logs)."""
    import threading
    import time

    if not sys.stderr.isatty() or os.environ.get("CI"):
        yield None
        return
    lock, state = threading.Lock(), {"done": 0, "shown": 0.0}

    def advance(n: int) -> None:
        with lock:
            state["done"] += n
            now = time.monotonic()
            if now - state["shown"] > 0.1:
                state["shown"] = now
                sys.stderr.write(f"\r{label}: {state['done'] / 1e6:,.1f} MB")

    try:
        yield advance
    finally:
        if state["shown"]:
            sys.stderr.write("\n")


def cmd_init(args: argparse.Namespace) -> int:
    from regops import api
    from regops.publish import count_text

    if args.upgrade:
        upgrade = api.init_upgrade(args.dir, dry_run=args.dry_run)
        done = "would rewrite" if args.dry_run else "rewrote"
        summary = f"{done} {count_text(len(upgrade.diffs), 'file')} for regops {__version__}"
        return _json_or(
            args,
            {"diffs": upgrade.diffs, "written": upgrade.written, "version": __version__},
            lambda r: "".join(upgrade.diffs.values()) + (summary if upgrade.diffs else "up to date"),
        )
    if args.org is None:
        raise UsageError("init needs --org ORG (the GitHub organization)")
    written = [
        os.path.relpath(path) for path in api.init(args.dir, org=args.org, hub_org=args.hub_org, storage=args.storage)
    ]
    nxt = "edit registry/regops.yaml (admins, bots), run `regops validate`, commit, push, then `regops doctor`"
    return _json_or(
        args,
        {"written": written, "next": nxt},
        lambda r: "\n".join([*(f"wrote {path}" for path in written), f"next: {nxt}"]),
    )


def cmd_doctor(args: argparse.Namespace) -> int:
    from regops import api, report

    findings = api.doctor(registry=args.registry, repo=args.repo)
    _json_or(args, findings, report.doctor_text)
    return EXIT_OK if all(f.ok for f in findings) else EXIT_PROBLEMS


def _setup_verbs(verbs: Any) -> None:
    p = verbs.add_parser("init", help="create a registry repository, or --upgrade its workflows and schemas")
    p.add_argument("dir", nargs="?", default=".", metavar="DIR", help="where (default: the current folder)")
    p.add_argument("--org", metavar="ORG", help="the GitHub organization (admins team, README)")
    p.add_argument("--hub-org", metavar="ORG", help="the Hugging Face organization for weights (default: --org)")
    p.add_argument("--storage", choices=("hf", "local"), default="hf", help="where weights live (default: hf)")
    p.add_argument(
        "--upgrade",
        action="store_true",
        help="rewrite only the workflows, their lock and the schemas for this regops version, showing the diff",
    )
    p.add_argument("--dry-run", action="store_true", help="with --upgrade: show the diff, write nothing")
    _json_flag(p)
    p.set_defaults(func=cmd_init)

    p = verbs.add_parser("doctor", help="check the GitHub settings the approvals gate relies on; exit 1 on any")
    p.add_argument("--repo", metavar="OWNER/NAME", help="the repository (default: $GITHUB_REPOSITORY)")
    _common(p)
    p.set_defaults(func=cmd_doctor)


def cmd_schema_export(args: argparse.Namespace) -> int:
    from regops import api

    changed = api.export_schemas(args.dest)
    _json_or(
        args,
        {"dest": args.dest, "written": changed},
        lambda r: "\n".join(f"wrote {p}" for p in changed) if changed else f"{args.dest}: up to date",
    )
    return EXIT_PROBLEMS if changed and args.check else EXIT_OK


# --- parser --------------------------------------------------------------------------


def _registry_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--registry",
        metavar="DIR",
        help="the registry folder, or a repository with registry/ (default: found from the current folder upwards)",
    )


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text (errors too, on stderr)")


def _common(parser: argparse.ArgumentParser, *, at: bool = False) -> None:
    _registry_flag(parser)
    _json_flag(parser)
    if at:
        parser.add_argument(
            "--at",
            metavar="TIME",
            help='a moment: 2026-10-01, 2026-10-01T14:30:00Z, "3 weeks ago", yesterday',
        )


def _writer(parser: argparse.ArgumentParser, *, dry_run: bool = True, by: bool = True) -> None:
    _common(parser)
    if by:
        parser.add_argument("--by", metavar="WHO", help="who acts (default: $GITHUB_ACTOR in Actions, else git's user)")
    if dry_run:
        parser.add_argument("--dry-run", action="store_true", help="print the plan and the diff; change nothing")


def _read_verbs(verbs: Any) -> None:
    p = verbs.add_parser("validate", help="check every file and rule; exit 1 on problems")
    _common(p)
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
    p.add_argument(
        "--base",
        metavar="REF",
        help="also check the change against git REF (a PR's base): no record deleted, immutable fields "
        "unchanged, transitions only appended, bots only to dev or archived",
    )
    p.set_defaults(func=cmd_validate)

    p = verbs.add_parser("status", help="one row per model: dev, staging, prod and since when (now or --at TIME)")
    _common(p, at=True)
    p.set_defaults(func=cmd_status)

    p = verbs.add_parser("show", help="one version (MODEL@VERSION or MODEL@STAGE) or a model (MODEL)")
    p.add_argument("ref", metavar="MODEL[@VERSION|@STAGE]")
    _common(p, at=True)
    p.set_defaults(func=cmd_show)

    p = verbs.add_parser(
        "history", help="every registration and transition (of MODEL, else of every model), oldest first"
    )
    p.add_argument("model", metavar="MODEL", nargs="?", help="one model (default: every model)")
    _common(p)
    _history_filters(p)
    p.set_defaults(func=cmd_history)

    p = verbs.add_parser("resolve", help="which version held MODEL@STAGE, now or --at a moment")
    p.add_argument("ref", metavar="MODEL@STAGE")
    _common(p, at=True)
    p.set_defaults(func=cmd_resolve)

    p = verbs.add_parser("lineage", help="a version's ancestors and their datasets")
    p.add_argument("ref", metavar="MODEL@VERSION")
    p.add_argument("--format", choices=("text", "mermaid"), default="text")
    _common(p, at=True)
    p.set_defaults(func=cmd_lineage)

    p = verbs.add_parser("diff", help="evals, hyperparameters, data and parent of B against A")
    p.add_argument("a", metavar="MODEL@A")
    p.add_argument("b", metavar="MODEL@B")
    _common(p, at=True)
    p.set_defaults(func=cmd_diff)


def _history_filters(p: argparse.ArgumentParser) -> None:
    from regops.kinds import STAGES, STEP_KINDS

    p.add_argument("--model", dest="models", action="append", metavar="MODEL", help="only this model (repeatable)")
    p.add_argument("--by", metavar="LOGIN", help="only steps made by LOGIN")
    p.add_argument("--bots", action="store_true", help="only steps made by bots (regops.yaml bots, …[bot] logins)")
    p.add_argument("--stage", choices=STAGES, help="only steps into or out of STAGE")
    p.add_argument(
        "--kind", dest="kinds", action="append", choices=STEP_KINDS, help="only steps of this kind (repeatable)"
    )
    when = 'e.g. 2026-09-01, 2026-09-01T14:30:00Z, "30 days ago"'
    p.add_argument("--since", metavar="TIME", help=f"only steps at or after TIME ({when})")
    p.add_argument("--until", metavar="TIME", help="only steps before TIME")
    p.add_argument("--format", choices=("text", "csv"), default="text", help="text table or CSV (--json: JSON)")


def _pr_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--pr", action="store_true", help="open a pull request with the change (branch, commit, push, review page)"
    )


def _which_pull(parser: argparse.ArgumentParser, *, merge_group: bool = False) -> None:
    """The pull request a ``pr`` action is about: by number, by head commit (a trusted workflow_run), or merge group."""
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--pr", type=int, metavar="N")
    if merge_group:
        which.add_argument("--merge-group", metavar="REF", help="a merge queue branch (gh-readonly-queue/main/pr-N-…)")
    which.add_argument(
        "--head-sha", metavar="SHA", help="the open pull request whose head commit is SHA, its commits fetched as data"
    )


def _signing_flags(p: argparse.ArgumentParser) -> None:
    signer = p.add_mutually_exclusive_group()
    signer.add_argument("--signing-key", metavar="PEM", help="sign the files with this private EC key")
    signer.add_argument(
        "--signing-keyless", action="store_true", help="sign with Sigstore and the ambient OIDC identity (Actions)"
    )
    signer.add_argument(
        "--signing-key-env",
        metavar="NAME",
        help="sign with the private key (PEM) in environment variable NAME; when it is empty, keylessly if the run "
        "has an OIDC token (GitHub Actions), else not at all",
    )
    p.add_argument("--signing-cert", metavar="PEM", help="with --signing-key: its certificate (the signer's identity)")


def _verify_verb(verbs: Any) -> None:
    p = verbs.add_parser("verify", help="check a version's chain: weights, signature, review, canary")
    p.add_argument("ref", metavar="MODEL@REF")
    _common(p, at=True)
    p.set_defaults(func=cmd_verify)


def _write_verbs(verbs: Any) -> None:
    p = verbs.add_parser("register", help="store a version's files and record it as a candidate")
    p.add_argument("model", metavar="MODEL")
    p.add_argument(
        "--artifacts", required=True, metavar="DIR", help="the folder of files to store (weights, config, …)"
    )
    p.add_argument("--evals", required=True, metavar="FILE", help="JSON or YAML mapping of metric -> score")
    p.add_argument("--params", required=True, metavar="FILE", help="JSON or YAML mapping of hyperparameters")
    p.add_argument("--dataset", required=True, metavar="NAME@VER", help="the training dataset version")
    p.add_argument("--eval-dataset", metavar="NAME@VER", help="the dataset the scores were measured on")
    p.add_argument("--parent", metavar="REF", help="VERSION, MODEL@VERSION or hf://ORG/REPO@COMMIT")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--version", metavar="V", help="the new version, e.g. 1.4.0")
    which.add_argument("--bump", choices=("major", "minor", "patch", "rc"), help="next version from the latest")
    _pr_flag(p)
    p.add_argument("--run-url", metavar="URL", help="the training run, for people")
    p.add_argument(
        "--confine", metavar="DIR", help="refuse --artifacts, --evals, --params outside DIR or in a .git folder"
    )
    _signing_flags(p)
    _writer(p, dry_run=False)
    p.set_defaults(func=cmd_register)

    p = verbs.add_parser("promote", help="move a version to a stage (archiving the previous holder)")
    p.add_argument("ref", metavar="MODEL@VERSION")
    p.add_argument("--to", required=True, choices=("dev", "staging", "prod", "archived"))
    p.add_argument("--notes", required=True, metavar="TEXT", help="why: recorded in the transition")
    _pr_flag(p)
    _writer(p)
    p.set_defaults(func=cmd_promote)

    p = verbs.add_parser("rollback", help="bring a former prod version back to prod")
    p.add_argument("model", metavar="MODEL")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", metavar="VERSION", help="the former prod version")
    target.add_argument("--at", metavar="TIME", help="whatever was prod at that moment")
    p.add_argument("--notes", required=True, metavar="TEXT", help="why: recorded in the transition")
    _pr_flag(p)
    _writer(p)
    p.set_defaults(func=cmd_rollback)

    p = verbs.add_parser("auto-promote", help="move candidates that beat dev into dev")
    p.add_argument("model", nargs="?", metavar="MODEL", help="only this model")
    _writer(p)
    p.set_defaults(func=cmd_auto_promote)

    _verify_verb(verbs)
    p = verbs.add_parser("download", help="fetch a version's files, verified (MODEL@VERSION or MODEL@STAGE)")
    p.add_argument("ref", metavar="MODEL@REF")
    p.add_argument("--dest", required=True, metavar="DIR")
    _common(p, at=True)
    p.set_defaults(func=cmd_download)

    p = verbs.add_parser("restore", help="bring a version's weights back from cold storage")
    p.add_argument("ref", metavar="MODEL@VERSION")
    _writer(p, by=False)
    p.set_defaults(func=cmd_restore)

    _canary_verbs(verbs)


def _canary_verbs(verbs: Any) -> None:
    p = verbs.add_parser("canary", help="canary results of the version in staging")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = actions.add_parser("record", help="record a canary verdict measured elsewhere")
    c.add_argument("ref", metavar="MODEL@VERSION")
    c.add_argument("--result", required=True, choices=("passed", "failed"))
    c.add_argument("--summary", metavar="TEXT")
    _attesting(c, "sign an attestation of the verdict")
    _writer(c, by=False)
    c.set_defaults(func=cmd_canary_record)
    c = actions.add_parser(
        "check", help="test each canary's guardrails against prod on live metrics, record the verdict"
    )
    _canary_common(c)
    c.add_argument("--now", metavar="TIME", help="check as of TIME (the end of the metrics window; default now)")
    c.add_argument("--dry-run", action="store_true", help="print the verdicts; record nothing")
    _attesting(c, "sign an attestation of each final verdict")
    c.set_defaults(func=cmd_canary_check)
    c = actions.add_parser(
        "pr",
        help="commit and push the recorded verdicts, then open the prod PR on a pass or the rollback PR on a fail "
        "(once each; reads no metrics)",
    )
    _canary_common(c)
    c.add_argument(
        "--by", metavar="WHO", help="who commits the results (default: github-actions[bot] in Actions, else git's user)"
    )
    c.set_defaults(func=cmd_canary_pr)
    c = actions.add_parser("plan", help="the requests per arm and hours each guardrail needs to reach a decision")
    c.add_argument("model", metavar="MODEL")
    c.add_argument("--traffic-per-hour", type=float, metavar="N", help="the model's requests per hour, all arms")
    _common(c)
    c.set_defaults(func=cmd_canary_plan)


def _canary_common(c: Any) -> None:
    c.add_argument("model", nargs="?", metavar="MODEL", help="only this model (default: every canary in staging)")
    c.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    _registry_flag(c)
    _json_flag(c)


def _outside_verbs(verbs: Any) -> None:
    p = verbs.add_parser("sync", help="make Hub tags, stage branches, model cards and serving.json match the registry")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 listing every difference")
    p.add_argument("--model", metavar="MODEL", help="only this model (serving.json is left out)")
    _common(p)
    p.set_defaults(func=cmd_sync)

    _pr_verb(verbs)

    p = verbs.add_parser("commit", help="commit what regops changed (registry/, serving.json, CODEOWNERS)")
    p.add_argument("-m", "--message", required=True, metavar="TEXT")
    p.add_argument("--push", action="store_true", help="push the branch (rebasing onto it if it moved)")
    p.add_argument(
        "--by", metavar="WHO", help="commit as this login (default: git's user; github-actions[bot] in Actions)"
    )
    _common(p)
    p.set_defaults(func=cmd_commit)

    p = verbs.add_parser("drift", help="sync --check, and keep one GitHub issue listing the drift (--issue)")
    p.add_argument("--issue", action="store_true", help="open or update the drift issue; close it when clean")
    _common(p)
    p.set_defaults(func=cmd_drift)

    p = verbs.add_parser("codeowners", help="write .github/CODEOWNERS from the owners in model.yaml")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if it is stale")
    _common(p)
    p.set_defaults(func=cmd_codeowners)

    p = verbs.add_parser("serving", help="the serving manifest: what serves prod and the canary")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    e = actions.add_parser("export", help="print the manifest (JSON) or KServe InferenceServices")
    e.add_argument("-o", "--output", metavar="FILE", help="write it to FILE instead")
    e.add_argument(
        "--format", choices=("json", "kserve"), default="json", help="kserve: one InferenceService per model (YAML)"
    )
    _common(e)
    e.set_defaults(func=cmd_serving_export)

    _retention_verb(verbs)
    _site_verb(verbs)


def _site_verb(verbs: Any) -> None:
    p = verbs.add_parser("site", help="the registry website: static pages of models, stages over time, evals")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    b = actions.add_parser("build", help="write the static site (self-contained, works offline)")
    b.add_argument("--out", default="site", metavar="DIR", help="the folder to write it to (default: site/)")
    _common(b)
    b.set_defaults(func=cmd_site_build)


def _pr_verb(verbs: Any) -> None:
    p = verbs.add_parser("pr", help="pull requests: the approvals check, the review comment, stamping approvals")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = actions.add_parser("check", help="the required check regops/approvals: set a commit status, exit 1 if missing")
    _which_pull(c, merge_group=True)
    c.add_argument("--sha", metavar="SHA", help="report the status on this commit (the merge group's) instead")
    c.add_argument("--base-sha", metavar="SHA", help="with --merge-group: the commit the group was built on")
    _common(c)
    c.set_defaults(func=cmd_pr_check)
    c = actions.add_parser("report", help="create or update the pull request's regops comment")
    _which_pull(c)
    _common(c)
    c.set_defaults(func=cmd_pr_report)
    c = actions.add_parser("stamp", help="record the merged pull request and its approvers on new transitions")
    c.add_argument("--since", default="HEAD^", metavar="REF", help="transitions added since REF (default HEAD^)")
    _attesting(c, "sign a review attestation of each stamped transition")
    _writer(c, by=False)
    c.set_defaults(func=cmd_pr_stamp)


def _signer(args: argparse.Namespace) -> dict[str, Any]:
    """The options :func:`_attesting` adds, as the keyword arguments the api takes."""
    return {"signing_key": args.signing_key, "signing_key_env": args.signing_key_env}


def _attesting(parser: argparse.ArgumentParser, what: str) -> None:
    """The signer of a job that writes attestations: a key file, or a key in an environment variable."""
    signer = parser.add_mutually_exclusive_group()
    signer.add_argument("--signing-key", metavar="PEM", help=f"{what} with this private key")
    signer.add_argument(
        "--signing-key-env", metavar="NAME", help=f"{what} with the PEM key in variable NAME (as register does)"
    )


def _retention_verb(verbs: Any) -> None:
    p = verbs.add_parser("retention", help="move weights retention no longer keeps hot to cold storage")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, func, text in (
        ("plan", cmd_retention_plan, "print which weights stay hot and which move, and why"),
        (
            "apply",
            cmd_retention_apply,
            "move them: copy, verify, record in the version file; remove hot copies whose move is published",
        ),
    ):
        a = actions.add_parser(name, help=text)
        a.add_argument("--model", metavar="MODEL", help="only this model")
        _common(a)
        a.add_argument("--at", metavar="TIME", help="apply the policy as of TIME (default: now), e.g. 2027-01-01")
        a.add_argument(
            "--published",
            metavar="REF",
            help="the git ref whose version files count as published: a hot copy goes only once REF records its "
            "move (default: the branch's upstream, else origin/BRANCH, else HEAD)",
        )
        a.set_defaults(func=func)


def _dataset_verbs(verbs: Any) -> None:
    p = verbs.add_parser("dataset", help="dataset versions: content hashes and references")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=IntermixedParser)
    h = actions.add_parser("hash", help="the content hash of a file or folder (blake3 over a manifest)")
    h.add_argument("path", metavar="PATH")
    h.add_argument("--json", action="store_true", help="print JSON instead of text")
    h.set_defaults(func=cmd_dataset_hash)
    d = actions.add_parser("register", help="record a dataset version under registry/datasets/")
    d.add_argument("name", metavar="NAME")
    d.add_argument("path", nargs="?", metavar="PATH", help="a file or folder to hash")
    d.add_argument("--version", required=True, metavar="V", help="the dataset version, e.g. 2026-06-01 or v3")
    d.add_argument("--from-dvc", metavar="FILE", help="a .dvc or dvc.lock file: record DVC's md5, read no data")
    d.add_argument("--dvc-path", metavar="PATH", help="which output of the DVC file, when it has several")
    d.add_argument("--iceberg", metavar="TABLE", help="an Apache Iceberg table (with --snapshot)")
    d.add_argument("--snapshot", type=int, metavar="ID", help="the Iceberg snapshot id")
    d.add_argument("--delta", metavar="PATH", help="a Delta Lake table (with --delta-version)")
    d.add_argument("--delta-version", type=int, metavar="N", help="the Delta table version")
    d.add_argument("--description", metavar="TEXT")
    d.add_argument("--uri", metavar="URI", help="where the data lives, for people (s3://…)")
    _writer(d, dry_run=False)
    d.set_defaults(func=cmd_dataset_register)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="regops",
        description="A model registry that lives in git: versions as YAML, promotions as pull requests.",
    )
    parser.add_argument("--version", action="version", version=f"regops {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    _read_verbs(verbs)
    _write_verbs(verbs)
    _outside_verbs(verbs)
    _dataset_verbs(verbs)
    _setup_verbs(verbs)
    p = verbs.add_parser("schema", help="JSON Schemas of the file kinds")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    e = actions.add_parser("export", help="write schemas/*.json from the models")
    e.add_argument("--dest", default="schemas", metavar="DIR")
    e.add_argument("--check", action="store_true", help="exit 1 if a file had to change (for CI)")
    _json_flag(e)
    e.set_defaults(func=cmd_schema_export)
    return parser


# The stable ``code`` of an error under --json: the nearest of these classes in the error's MRO names it.
ERROR_CODES = {
    "RegistryNotFoundError": "registry-not-found",
    "InvalidRegistryError": "invalid-registry",
    "ModelNotFoundError": "model-not-found",
    "VersionNotFoundError": "version-not-found",
    "StageEmptyError": "stage-empty",
    "RefError": "bad-ref",
    "TimeSpecError": "bad-time",
    "RegistryLockedError": "registry-locked",
    "ChangedSincePlannedError": "changed-since-planned",
    "LifecycleError": "refused",
    "ArtifactsMissingError": "weights-missing",
    "HashMismatchError": "hash-mismatch",
    "HubError": "hub",
    "StorageError": "storage",
    "DatasetError": "dataset",
    "CanaryConfigError": "canary-config",
    "MetricsError": "metrics",
    "StalledError": "stalled",
    "NotARepositoryError": "not-a-git-repository",
    "GitError": "git",
    "GitHubUnreachableError": "github-unreachable",
    "GitHubError": "github",
    "RegopsError": "error",
}


class UsageError(Exception):
    """A command line that does not parse or does not make sense (exit 2); ``text``: as printed without --json."""

    def __init__(self, message: str, text: str | None = None) -> None:
        super().__init__(message)
        self.message, self.text = message, text or f"regops: error: {message}"


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse's hook: -> NoReturn
        raise UsageError(message, f"{self.format_usage()}{self.prog}: error: {message}")

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        from regops.errors import did_you_mean

        if action.choices is not None and value not in action.choices:
            known = ", ".join(map(str, action.choices))
            hint = did_you_mean(str(value), map(str, action.choices))
            raise argparse.ArgumentError(action, f"invalid choice: {value!r}{hint} (choose from {known})")


class IntermixedParser(Parser):
    """Options and positionals in any order (``NAME --version V PATH`` as well as ``NAME PATH --version V``)."""

    _inner = False

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if self._inner:  # parse_known_intermixed_args calls back in here, twice
            return super().parse_known_args(args, namespace)
        self._inner = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._inner = False


def error_code(error: BaseException) -> str:
    for cls in type(error).__mro__:
        if cls.__name__ in ERROR_CODES:
            return ERROR_CODES[cls.__name__]
    return "bug"


def _fail(wants_json: bool, exit_code: int, code: str, message: str, text: str | None = None) -> int:
    if wants_json:
        sys.stderr.write(json.dumps({"code": code, "message": message, "exit": exit_code}) + "\n")
    else:
        sys.stderr.write((text if text is not None else f"regops: error: {message}") + "\n")
    return exit_code


def _wants_json(args: argparse.Namespace | None, argv: Sequence[str]) -> bool:
    if args is None:  # the command line did not parse: ask it as written
        return "--json" in argv or "--format=json" in argv or ("--format", "json") in pairwise(argv)
    return bool(getattr(args, "json", False)) or getattr(args, "format", None) == "json"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version
        return int(e.code or 0)
    except UsageError as e:
        return _fail(_wants_json(None, argv), EXIT_USAGE, "usage", e.message, e.text)
    return _run(args, wants_json=_wants_json(args, argv))


def _run(args: argparse.Namespace, *, wants_json: bool) -> int:
    """The verb, and the one place that turns whatever it raises into a message and an exit code."""
    func: Verb = args.func
    try:
        return func(args)
    except UsageError as e:
        return _fail(wants_json, EXIT_USAGE, "usage", e.message, e.text)
    except KeyboardInterrupt:
        return _fail(wants_json, EXIT_INTERRUPTED, "interrupted", "interrupted")
    except Exception as e:  # the one place that catches everything
        from regops.errors import RegopsError, TimeSpecError

        if isinstance(e, RegopsError):
            usage = isinstance(e, TimeSpecError)  # an --at that names no moment
            return _fail(wants_json, EXIT_USAGE if usage else EXIT_PROBLEMS, error_code(e), str(e))
        traceback.print_exc()
        message = f"a bug in regops ({type(e).__name__}: {e}); please report it with the traceback above"
        return _fail(wants_json, EXIT_BUG, "bug", message, f"regops: this is {message}")
