"""A verb's result printed: as JSON with --json, else as its text rendering; a plan as its summary or its text."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from regops import report
from regops.cli.common import EXIT_OK, out

__all__ = ["json_or", "plan_out"]


def json_or(args: argparse.Namespace, value: Any, render: Callable[[Any], str]) -> int:
    out(report.to_json(value) if args.json else render(value))
    return EXIT_OK


def plan_out(args: argparse.Namespace, plan: Any) -> int:
    out(
        report.to_json(report.plan_summary(plan, dry_run=args.dry_run))
        if args.json
        else report.plan_text(plan, dry_run=args.dry_run)
    )
    return EXIT_OK
