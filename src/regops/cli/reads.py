"""The read verbs: validate, status, show, history, resolve, lineage, diff."""

from __future__ import annotations

import argparse
from datetime import datetime
from functools import partial
from operator import attrgetter
from typing import Any

from regops import api, history_stream, publish, report
from regops.cli.common import EXIT_OK, EXIT_PROBLEMS, out
from regops.cli.output import json_or, write_parts
from regops.timespec import parse_time


def moment_of(at: str | None) -> datetime | None:
    """An --at read once, so a relative one ("3 weeks ago") names one moment for the whole verb."""
    return parse_time(at) if at else None


def cmd_validate(args: argparse.Namespace) -> int:
    opened = api.open_registry(args.registry)  # once: the check and the advice read the same registry
    problems = api.validate(registry=opened, base=args.base)
    warnings = api.advice(registry=opened)
    render = {"text": report.problems_text, "json": report.problems_json, "github": report.problems_github}
    text = render["json" if args.json else args.format]([*problems, *warnings])
    if text:
        out(text)
    return EXIT_PROBLEMS if problems else EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    moment = moment_of(args.at)
    rows = api.status(registry=args.registry, at=moment)
    return json_or(args, rows, lambda r: report.status_text(r, at=moment))


def cmd_show(args: argparse.Namespace) -> int:
    moment = moment_of(args.at)
    if "@" not in args.ref:
        entry = api.show_model(args.ref, registry=args.registry)
        raw = entry.config.raw if entry.config else None
        if moment is not None:
            return _show_model_at(args, raw, entry, moment)
        return json_or(args, raw, lambda _: report.model_text(entry.config, entry.ordered))
    record = api.show(args.ref, registry=args.registry, at=moment)
    return json_or(args, record.raw, lambda _: report.show_text(record, at=moment))


def _show_model_at(args: argparse.Namespace, raw: Any, entry: Any, moment: datetime) -> int:
    found = api.versions_at(args.ref, registry=args.registry, at=moment)
    stages = {r.version: stage for r, stage in found}
    value = {"model": raw, "at": moment, "versions": [{"version": v, "stage": s} for v, s in stages.items()]}
    return json_or(args, value, lambda _: report.model_text(entry.config, [r for r, _ in found], stages=stages))


def cmd_history(args: argparse.Namespace) -> int:
    as_text = not args.json and args.format != "csv"
    one_model = len({args.model, *(args.models or ())} - {None}) == 1
    found = api.history_moves(
        args.model,
        registry=args.registry,
        render=partial(history_stream.short_text, one_model=one_model) if as_text else None,
        models=args.models or (),
        by=args.by,
        bots=args.bots,
        stage=args.stage,
        kinds=args.kinds or (),
        since=args.since,
        until=args.until,
    )
    if found.rendered is not None:  # made while git looked
        return json_or(args, found, attrgetter("rendered"))
    if args.json:
        return write_parts(history_stream.history_json_parts(found))
    if not as_text:
        return write_parts(history_stream.history_csv_parts(found))
    return write_parts(history_stream.history_text_parts(found, one_model=one_model))


def cmd_resolve(args: argparse.Namespace) -> int:
    return json_or(args, api.resolve(args.ref, registry=args.registry, at=args.at), report.resolution_text)


def cmd_lineage(args: argparse.Namespace) -> int:
    nodes = api.lineage(args.ref, registry=args.registry, at=args.at)
    render = publish.lineage_mermaid if args.format == "mermaid" else report.lineage_text
    return json_or(args, nodes, render)


def cmd_diff(args: argparse.Namespace) -> int:
    return json_or(args, api.diff(args.a, args.b, registry=args.registry, at=args.at), report.diff_text)
