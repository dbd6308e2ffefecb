"""The verbs that reach GitHub, the Hub or the metrics: pull requests (pr check, report, stamp), commit, sync,
drift, and the canary (record, check, pr, plan)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from regops import api, publish, report
from regops.cli.common import EXIT_OK, EXIT_PROBLEMS, UsageError, out, signer
from regops.cli.output import json_or, plan_out


def cmd_pr_check(args: argparse.Namespace) -> int:
    if args.head_sha is not None:
        return _pr_check_head(args)
    if args.merge_group is not None:
        if args.sha is None or args.base_sha is None:
            raise UsageError("--merge-group needs --sha (the group's commit) and --base-sha")
        outcome = api.pr_check_group(args.merge_group, sha=args.sha, base_sha=args.base_sha, registry=args.registry)
    else:
        outcome = api.pr_check(args.pr, registry=args.registry, status_sha=args.sha)
    json_or(args, outcome, report.approvals_text)
    return EXIT_OK if outcome.ok else EXIT_PROBLEMS


def _no_open_pull(args: argparse.Namespace) -> int:
    return json_or(
        args, {}, lambda _: f"no open pull request has head {args.head_sha} (it moved on; the newer run decides)"
    )


def _pr_check_head(args: argparse.Namespace) -> int:
    if args.sha is not None:
        raise UsageError("--sha goes with --pr or --merge-group; --head-sha reports on that head")
    outcomes = api.pr_check_head(args.head_sha, registry=args.registry)
    if not outcomes:
        return _no_open_pull(args)
    json_or(
        args,
        outcomes,
        lambda found: "\n".join(f"pull request #{n}: {report.approvals_text(o)}" for n, o in found.items()),
    )
    return EXIT_OK if all(o.ok for o in outcomes.values()) else EXIT_PROBLEMS


def cmd_pr_report(args: argparse.Namespace) -> int:
    if args.head_sha is not None:
        actions = api.pr_report_head(args.head_sha, registry=args.registry)
    else:
        actions = {args.pr: api.pr_report(args.pr, registry=args.registry)[0]}
    if not actions:
        return _no_open_pull(args)
    return json_or(
        args, actions, lambda found: "\n".join(f"pull request #{n}: regops comment {a}" for n, a in found.items())
    )


def cmd_pr_stamp(args: argparse.Namespace) -> int:
    stamped = api.pr_stamp(
        registry=args.registry,
        since=args.since,
        dry_run=args.dry_run,
        **signer(args),
    )
    return plan_out(args, stamped)


def cmd_commit(args: argparse.Namespace) -> int:
    sha = api.commit(registry=args.registry, message=args.message, push=args.push, by=args.by)
    return json_or(
        args,
        {"commit": sha, "pushed": bool(sha and args.push)},
        lambda r: (
            f"committed {sha[:12]}" + (" and pushed" if r["pushed"] else "")
            if sha
            else "nothing changed; nothing committed"
        ),
    )


def cmd_sync(args: argparse.Namespace) -> int:
    return _sync_out(args, api.sync(registry=args.registry, check=args.check, model=args.model))


def cmd_drift(args: argparse.Namespace) -> int:
    return _sync_out(args, api.drift(registry=args.registry, issue=args.issue))


def _sync_out(args: argparse.Namespace, result: Any) -> int:
    out(report.to_json(report.sync_summary(result)) if args.json else report.sync_text(result))
    return EXIT_OK if result.ok else EXIT_PROBLEMS


def cmd_canary_record(args: argparse.Namespace) -> int:
    plan = api.record_canary(
        args.ref,
        registry=args.registry,
        result=args.result,
        summary=args.summary,
        dry_run=args.dry_run,
        **signer(args),
    )
    return plan_out(args, plan)


def cmd_canary_check(args: argparse.Namespace) -> int:
    checks = api.canary_check(
        args.model,
        registry=args.registry,
        now=args.now,
        dry_run=args.dry_run,
        **signer(args),
    )
    _canary_out(args, checks)
    # A failed or unreadable canary turns the scheduled run red: someone should look, PR or not.
    return EXIT_PROBLEMS if any(c.decision.verdict in ("fail", "inconclusive") for c in checks) else EXIT_OK


def cmd_canary_pr(args: argparse.Namespace) -> int:
    # The verdicts were judged (and the run turned red) by `canary check`; here only errors fail.
    _canary_out(args, api.canary_pr(args.model, registry=args.registry, by=args.by))
    return EXIT_OK


def cmd_canary_plan(args: argparse.Namespace) -> int:
    plans = api.canary_plan(args.model, registry=args.registry, traffic_per_hour=args.traffic_per_hour)
    return json_or(args, plans, report.canary_plan_text)


def _canary_out(args: argparse.Namespace, checks: Sequence[Any]) -> None:
    render = {"text": report.canary_text, "markdown": publish.canary_markdown, "json": report.to_json}
    out(render["json" if args.json else args.format](checks))
