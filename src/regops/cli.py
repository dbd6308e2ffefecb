"""``regops``: argparse, one function per verb, exit codes.

0 ok, 1 problems found (or a registry error), 2 usage, 3 a bug in regops, 130 Ctrl-C.
Imports of the heavy parts happen inside the verbs, so ``regops --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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

    problems = api.validate(registry=args.registry, base=args.base)
    render = {"text": report.problems_text, "json": report.problems_json, "github": report.problems_github}
    text = render[args.format](problems)
    if text:
        _out(text)
    return EXIT_PROBLEMS if problems else EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from regops import api, report

    return _json_or(args, api.status(registry=args.registry), report.status_text)


def cmd_show(args: argparse.Namespace) -> int:
    from regops import api, report

    if "@" not in args.ref:
        entry = api.show_model(args.ref, registry=args.registry)
        raw = entry.config.raw if entry.config else None
        return _json_or(args, raw, lambda _: report.model_text(entry.config, entry.ordered))
    record = api.show(args.ref, registry=args.registry, at=args.at)
    return _json_or(args, record.raw, lambda _: report.show_text(record))


def cmd_history(args: argparse.Namespace) -> int:
    from regops import api, report

    return _json_or(args, api.history(args.model, registry=args.registry), report.history_text)


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
        args.ref, registry=args.registry, result=args.result, summary=args.summary, dry_run=args.dry_run
    )
    return _plan_out(args, plan)


def cmd_canary_check(args: argparse.Namespace) -> int:
    from regops import api

    checks = api.canary_check(args.model, registry=args.registry, now=args.now, dry_run=args.dry_run)
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
    _out(report.canary_plan_text(plans))
    return EXIT_OK


def _canary_out(args: argparse.Namespace, checks: Sequence[Any]) -> None:
    from regops import publish, report

    render = {"text": report.canary_text, "markdown": publish.canary_markdown, "json": report.to_json}
    _out(render[args.format](checks))


def cmd_restore(args: argparse.Namespace) -> int:
    from regops import api

    return _plan_out(args, api.restore(args.ref, registry=args.registry, dry_run=args.dry_run))


def cmd_pr_check(args: argparse.Namespace) -> int:
    from regops import api, report

    if args.head_sha is not None:
        return _pr_check_head(args)
    if args.merge_group is not None:
        if args.sha is None or args.base_sha is None:
            sys.stderr.write("regops: error: --merge-group needs --sha (the group's commit) and --base-sha\n")
            return EXIT_USAGE
        outcome = api.pr_check_group(args.merge_group, sha=args.sha, base_sha=args.base_sha, registry=args.registry)
    else:
        outcome = api.pr_check(args.pr, registry=args.registry, status_sha=args.sha)
    _json_or(args, outcome, report.approvals_text)
    return EXIT_OK if outcome.ok else EXIT_PROBLEMS


def _no_open_pull(head_sha: str) -> int:
    _out(f"no open pull request has head {head_sha} (it moved on; the newer run decides)")
    return EXIT_OK


def _pr_check_head(args: argparse.Namespace) -> int:
    from regops import api, report

    if args.sha is not None:
        sys.stderr.write("regops: error: --sha goes with --pr or --merge-group; --head-sha reports on that head\n")
        return EXIT_USAGE
    outcomes = api.pr_check_head(args.head_sha, registry=args.registry)
    if not outcomes:
        return _no_open_pull(args.head_sha)
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
        return _no_open_pull(args.head_sha)
    for number, action in actions.items():
        _out(f"pull request #{number}: regops comment {action}")
    return EXIT_OK


def cmd_pr_stamp(args: argparse.Namespace) -> int:
    from regops import api

    return _plan_out(args, api.pr_stamp(registry=args.registry, since=args.since, dry_run=args.dry_run))


def cmd_commit(args: argparse.Namespace) -> int:
    from regops import api

    sha = api.commit(registry=args.registry, message=args.message, push=args.push, by=args.by)
    _out(
        f"committed {sha[:12]}" + (" and pushed" if args.push else "") if sha else "nothing changed; nothing committed"
    )
    return EXIT_OK


def cmd_drift(args: argparse.Namespace) -> int:
    from regops import api

    return _sync_out(args, api.drift(registry=args.registry, issue=args.issue))


def cmd_codeowners(args: argparse.Namespace) -> int:
    from regops import api

    path, changed = api.codeowners(registry=args.registry, check=args.check)
    shown = os.path.relpath(path)
    if args.check:
        _out(f"{shown} is stale: run `regops codeowners`" if changed else f"{shown} is current")
        return EXIT_PROBLEMS if changed else EXIT_OK
    _out(f"wrote {shown}" if changed else f"{shown} is current; nothing to write")
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    from regops import api

    return _sync_out(args, api.sync(registry=args.registry, check=args.check, model=args.model))


def _sync_out(args: argparse.Namespace, result: Any) -> int:
    from regops import report

    _out(report.to_json(report.sync_summary(result)) if args.json else report.sync_text(result))
    return EXIT_OK if result.ok else EXIT_PROBLEMS


def cmd_serving_export(args: argparse.Namespace) -> int:
    from regops import api, store

    text = api.serving_export(registry=args.registry, format=args.format)
    if args.output:
        store.write_atomic(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return EXIT_OK


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
        )
    return _json_or(args, result, report.register_text)


def cmd_download(args: argparse.Namespace) -> int:
    from regops import api, report

    with _progress("downloading") as progress:
        record, written = api.download(args.ref, registry=args.registry, dest=args.dest, at=args.at, progress=progress)
    return _json_or(args, {"version": record.ref, "files": written}, report.download_text)


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


def cmd_schema_export(args: argparse.Namespace) -> int:
    from regops import api

    changed = api.export_schemas(args.dest)
    for path in changed:
        _out(f"wrote {path}")
    if not changed:
        _out(f"{args.dest}: up to date")
    return EXIT_PROBLEMS if changed and args.check else EXIT_OK


# --- parser --------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, json: bool = True, at: bool = False) -> None:
    parser.add_argument(
        "--registry",
        default="registry",
        metavar="DIR",
        help="the registry folder, or a repository with registry/",
    )
    if json:
        parser.add_argument("--json", action="store_true", help="print JSON instead of text")
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
    _common(p, json=False)
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
    p.add_argument(
        "--base",
        metavar="REF",
        help="also check the change against git REF (a PR's base): no record deleted, immutable fields "
        "unchanged, transitions only appended, bots only to dev or archived",
    )
    p.set_defaults(func=cmd_validate)

    p = verbs.add_parser("status", help="one row per model: dev, staging, prod and since when")
    _common(p)
    p.set_defaults(func=cmd_status)

    p = verbs.add_parser("show", help="one version (MODEL@VERSION or MODEL@STAGE) or a model (MODEL)")
    p.add_argument("ref", metavar="MODEL[@VERSION|@STAGE]")
    _common(p, at=True)
    p.set_defaults(func=cmd_show)

    p = verbs.add_parser("history", help="every registration and transition of a model, oldest first")
    p.add_argument("model", metavar="MODEL")
    _common(p)
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
    _writer(c, by=False)
    c.set_defaults(func=cmd_canary_record)
    c = actions.add_parser(
        "check", help="test each canary's guardrails against prod on live metrics, record the verdict"
    )
    _canary_common(c)
    c.add_argument("--now", metavar="TIME", help="check as of TIME (the end of the metrics window; default now)")
    c.add_argument("--dry-run", action="store_true", help="print the verdicts; record nothing")
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
    c.add_argument(
        "--registry", default="registry", metavar="DIR", help="the registry folder, or a repository with registry/"
    )
    c.set_defaults(func=cmd_canary_plan)


def _canary_common(c: Any) -> None:
    c.add_argument("model", nargs="?", metavar="MODEL", help="only this model (default: every canary in staging)")
    c.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    c.add_argument(
        "--registry", default="registry", metavar="DIR", help="the registry folder, or a repository with registry/"
    )


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
    _common(p, json=False)
    p.set_defaults(func=cmd_commit)

    p = verbs.add_parser("drift", help="sync --check, and keep one GitHub issue listing the drift (--issue)")
    p.add_argument("--issue", action="store_true", help="open or update the drift issue; close it when clean")
    _common(p)
    p.set_defaults(func=cmd_drift)

    p = verbs.add_parser("codeowners", help="write .github/CODEOWNERS from the owners in model.yaml")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if it is stale")
    _common(p, json=False)
    p.set_defaults(func=cmd_codeowners)

    p = verbs.add_parser("serving", help="the serving manifest: what serves prod and the canary")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    e = actions.add_parser("export", help="print the manifest (JSON) or KServe InferenceServices")
    e.add_argument("-o", "--output", metavar="FILE", help="write it to FILE instead")
    e.add_argument(
        "--format", choices=("json", "kserve"), default="json", help="kserve: one InferenceService per model (YAML)"
    )
    _common(e, json=False)
    e.set_defaults(func=cmd_serving_export)

    _retention_verb(verbs)


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
    _common(c, json=False)
    c.set_defaults(func=cmd_pr_report)
    c = actions.add_parser("stamp", help="record the merged pull request and its approvers on new transitions")
    c.add_argument("--since", default="HEAD^", metavar="REF", help="transitions added since REF (default HEAD^)")
    _writer(c, by=False)
    c.set_defaults(func=cmd_pr_stamp)


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
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
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
    parser = argparse.ArgumentParser(
        prog="regops",
        description="A model registry that lives in git: versions as YAML, promotions as pull requests.",
    )
    parser.add_argument("--version", action="version", version=f"regops {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    _read_verbs(verbs)
    _write_verbs(verbs)
    _outside_verbs(verbs)
    _dataset_verbs(verbs)
    p = verbs.add_parser("schema", help="JSON Schemas of the file kinds")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    e = actions.add_parser("export", help="write schemas/*.json from the models")
    e.add_argument("--dest", default="schemas", metavar="DIR")
    e.add_argument("--check", action="store_true", help="exit 1 if a file had to change (for CI)")
    e.set_defaults(func=cmd_schema_export)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    func: Verb = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as e:  # the one place that catches everything
        from regops.errors import RegopsError, TimeSpecError

        if isinstance(e, RegopsError):
            sys.stderr.write(f"regops: error: {e}\n")
            return EXIT_USAGE if isinstance(e, TimeSpecError) else EXIT_PROBLEMS  # an --at that names no moment
        traceback.print_exc()
        sys.stderr.write("regops: this is a bug in regops; please report it with the traceback above\n")
        return EXIT_BUG
