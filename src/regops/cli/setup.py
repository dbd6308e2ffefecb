"""The setup verbs: init, doctor, verify, site build and schema export."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from regops import __version__, api, report
from regops.cli.common import EXIT_OK, EXIT_PROBLEMS, UsageError
from regops.cli.output import json_or
from regops.publish import count_text


def cmd_init(args: argparse.Namespace) -> int:

    if args.upgrade:
        upgrade = api.init_upgrade(args.dir, dry_run=args.dry_run)
        done = "would rewrite" if args.dry_run else "rewrote"
        summary = f"{done} {count_text(len(upgrade.diffs), 'file')} for regops {__version__}"
        return json_or(
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
    return json_or(
        args,
        {"written": written, "next": nxt},
        lambda r: "\n".join([*(f"wrote {path}" for path in written), f"next: {nxt}"]),
    )


def cmd_doctor(args: argparse.Namespace) -> int:
    findings = api.doctor(registry=args.registry, repo=args.repo)
    json_or(args, findings, report.doctor_text)
    return EXIT_OK if all(f.ok for f in findings) else EXIT_PROBLEMS


def cmd_verify(args: argparse.Namespace) -> int:
    chain = api.verify(args.ref, registry=args.registry, at=args.at)
    json_or(args, chain, report.chain_text)
    return EXIT_OK if chain.ok else EXIT_PROBLEMS


def cmd_site_build(args: argparse.Namespace) -> int:
    pages = api.site_build(registry=args.registry, out=args.out)
    count = sum(p.suffix == ".html" for p in pages)
    index = Path(args.out) / "index.html"
    return json_or(
        args,
        {"out": args.out, "pages": count, "index": str(index)},
        lambda r: f"{args.out}: {count} pages written; open {index}",
    )


def cmd_schema_export(args: argparse.Namespace) -> int:
    changed = api.export_schemas(args.dest)
    json_or(
        args,
        {"dest": args.dest, "written": changed},
        lambda r: "\n".join(f"wrote {p}" for p in changed) if changed else f"{args.dest}: up to date",
    )
    return EXIT_PROBLEMS if changed and args.check else EXIT_OK
