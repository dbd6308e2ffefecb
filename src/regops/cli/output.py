"""A verb's result printed: as JSON with --json, else as its text rendering; a plan as its summary or its text."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from regops import report
from regops.cli.common import EXIT_OK, out

__all__ = ["json_or", "plan_out", "write_parts"]


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


def write_parts(parts: Iterable[str]) -> int:
    """Output written as it is made (a long history); a reader that stops reading (``| head``) ends it quietly, as
    when the output was written at once."""
    try:
        for part in parts:
            sys.stdout.write(part)
        sys.stdout.flush()
    except BrokenPipeError:  # nothing more reaches the reader: the rest, and the exit's flush, go nowhere
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_OK
