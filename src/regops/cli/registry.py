"""The verbs that change the registry or its weights: register, promote, rollback, auto-promote, download,
restore, retention, dataset, codeowners and the serving manifest."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from regops import api, report, store
from regops.cli.common import EXIT_OK, EXIT_PROBLEMS, progress_meter
from regops.cli.output import json_or, plan_out


def cmd_register(args: argparse.Namespace) -> int:
    with progress_meter("hashing and storing") as progress:
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
    return json_or(args, result, report.register_text)


def cmd_promote(args: argparse.Namespace) -> int:
    plan = api.promote(
        args.ref, registry=args.registry, to=args.to, notes=args.notes, by=args.by, dry_run=args.dry_run, pr=args.pr
    )
    return plan_out(args, plan)


def cmd_rollback(args: argparse.Namespace) -> int:
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
    return plan_out(args, plan)


def cmd_auto_promote(args: argparse.Namespace) -> int:
    return plan_out(args, api.auto_promote(args.model, registry=args.registry, by=args.by, dry_run=args.dry_run))


def cmd_download(args: argparse.Namespace) -> int:
    with progress_meter("downloading") as progress:
        record, written = api.download(args.ref, registry=args.registry, dest=args.dest, at=args.at, progress=progress)
    return json_or(args, {"version": record.ref, "files": written}, report.download_text)


def cmd_restore(args: argparse.Namespace) -> int:
    return plan_out(args, api.restore(args.ref, registry=args.registry, dry_run=args.dry_run))


def cmd_retention_plan(args: argparse.Namespace) -> int:
    decisions = api.retention_plan(registry=args.registry, model=args.model, now=args.at, published=args.published)
    return json_or(args, decisions, report.retention_text)


def cmd_retention_apply(args: argparse.Namespace) -> int:
    def moved(decision: Any, where: str) -> None:
        verb = "moved" if decision.action == "move" else "removed the leftover hot copy of"
        sys.stderr.write(f"{verb} {decision.ref} → {where}\n")

    decisions = api.retention_apply(
        registry=args.registry, model=args.model, now=args.at, published=args.published, on_move=moved
    )
    return json_or(args, decisions, lambda d: report.retention_text(d, applied=True))


def cmd_dataset_hash(args: argparse.Namespace) -> int:
    return json_or(args, api.dataset_hash(args.path), report.tree_hash_text)


def cmd_dataset_register(args: argparse.Namespace) -> int:
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
    return json_or(args, {"path": path}, lambda r: f"registered {os.path.relpath(r['path'])}")


def cmd_codeowners(args: argparse.Namespace) -> int:
    path, changed = api.codeowners(registry=args.registry, check=args.check)
    state = "current" if not changed else "missing" if not path.exists() else "stale" if args.check else "written"
    shown = os.path.relpath(path)
    json_or(args, {"path": path, "state": state}, lambda r: _codeowners_text(shown, state, check=args.check))
    return EXIT_PROBLEMS if changed and args.check else EXIT_OK


def _codeowners_text(shown: str, state: str, *, check: bool) -> str:
    return {
        "current": f"{shown} is current" + ("" if check else "; nothing to write"),
        "missing": f"{shown} does not exist: run `regops codeowners` to write it",
        "stale": f"{shown} is stale: run `regops codeowners`",
        "written": f"wrote {shown}",
    }[state]


def cmd_serving_export(args: argparse.Namespace) -> int:
    text = api.serving_export(registry=args.registry, format="json" if args.json else args.format)
    if args.output:
        store.write_atomic(Path(args.output), text)
    else:
        sys.stdout.write(text)
    return EXIT_OK
