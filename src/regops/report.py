"""Rendering results in the terminal, for people and programs: text, JSON, GitHub annotations, Mermaid.

Functions here turn values into strings; only the CLI writes them out. What regops publishes (pull request
bodies and comments, issues, model cards) is :mod:`regops.publish`.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regops.kinds import Problem
from regops.publish import CANARY_HEADERS, canary_rows, count_text, number_text, size_text, time_text
from regops.summaries import MOVE_CODES, move_of_code

if TYPE_CHECKING:
    from regops.approvals import Outcome
    from regops.canary import Checked, SamplePlan
    from regops.doctor import Finding
    from regops.lifecycle import Plan
    from regops.provenance import Chain
    from regops.queries import History
    from regops.records import ModelRecord, Step, VersionRecord
    from regops.registration import RegisterResult
    from regops.registry import HistoryEntry, LineageNode, ModelStatus, Resolution, StageSummary, VersionDiff
    from regops.retention import Decision
    from regops.summaries import Moves
    from regops.sync import SyncResult
    from regops.treehash import TreeHash

__all__ = [
    "HISTORY_HEADERS",
    "aligned_columns",
    "approvals_text",
    "canary_text",
    "diff_text",
    "doctor_text",
    "download_text",
    "history_columns",
    "history_csv",
    "history_csv_cells",
    "history_text",
    "lineage_text",
    "measure_text",
    "model_text",
    "names_models",
    "plain",
    "plan_summary",
    "plan_text",
    "problems_github",
    "problems_json",
    "problems_text",
    "register_text",
    "resolution_text",
    "retention_text",
    "show_text",
    "status_text",
    "sync_summary",
    "sync_text",
    "to_json",
    "tree_hash_text",
]


# --- JSON --------------------------------------------------------------------------


def plain(value: Any) -> Any:
    """A result as JSON's values: dataclasses as objects (``from_`` as ``from``), datetimes as ISO 8601, paths as
    text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name.rstrip("_"): plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """Any result as indented JSON (datetimes as ISO 8601, ``from_`` as ``from``)."""
    return json.dumps(plain(value), indent=2, allow_nan=False)


# --- problems --------------------------------------------------------------------------


def problems_text(problems: Sequence[Problem]) -> str:
    """Each problem, then the count; warnings are listed and counted apart (they fail nothing)."""
    lines = [str(p) for p in problems]
    errors = [p for p in problems if p.severity == "error"]
    files = len({p.path for p in errors})
    summary = f"{count_text(len(errors), 'problem')} in {count_text(files, 'file')}"
    lines.append(summary if errors else "ok: no problems")
    warned = len(problems) - len(errors)
    if warned:
        lines[-1] += f" ({count_text(warned, 'warning')})"
    return "\n".join(lines)


def problems_json(problems: Sequence[Problem]) -> str:
    return to_json(list(problems))


def _escape(text: str, *, property_: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_ else text


def problems_github(problems: Sequence[Problem]) -> str:
    """Workflow commands that GitHub shows inline in the pull request's diff."""
    lines = []
    for p in problems:
        props = [f"file={_escape(p.path, property_=True)}"]
        if p.line:
            props += [f"line={p.line}", f"col={p.col}"]
        props.append(f"title={_escape(p.field or 'regops validate', property_=True)}")
        lines.append(f"::{p.severity} {','.join(props)}::{_escape(p.message)}")
    return "\n".join(lines)


# --- tables --------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell, two spaces apart; one format per line (10,000-row histories)."""
    return _aligned([headers, *([str(c) for c in row] for row in rows)])


def _aligned(cells: Sequence[Sequence[str]]) -> str:
    """:func:`_table` of rows already made of text, the header first."""
    return aligned_columns(list(zip(*cells, strict=True)))


def aligned_columns(columns: Sequence[Sequence[str]], widths: Sequence[int] | None = None) -> str:
    """:func:`_aligned` of columns (each its header first), padded column by column (the last one is cut by rstrip)
    to its widest cell, or to ``widths`` (some rows of a table too long to hold, padded to the whole table's widths)."""
    *padded, last = columns
    widths = widths or list(map(_width, padded))
    padded = [[cell.ljust(width) for cell in column] for column, width in zip(padded, widths, strict=True)]
    return "\n".join(map(str.rstrip, map("  ".join, zip(*padded, last, strict=True))))


def _width(column: Sequence[str]) -> int:
    return max(map(len, column))


def _holder(summary: StageSummary | None) -> str:
    return f"{summary.version} ({number_text(summary.score)})" if summary else "-"


def status_text(rows: Sequence[ModelStatus], *, at: datetime | None = None) -> str:
    if not rows:
        if at is not None:
            return f"no model had a version at {time_text(at)} UTC"
        return "no models yet: add one under registry/models/<model>/"
    table = [
        (
            r.model,
            r.primary_metric,
            _holder(r.prod),
            time_text(r.prod_since),
            _holder(r.staging),
            _holder(r.dev),
            str(r.candidates),
            str(r.versions),
        )
        for r in rows
    ]
    headers = ("MODEL", "METRIC", "PROD", "PROD SINCE", "STAGING", "DEV", "CANDIDATES", "VERSIONS")
    heading = [f"as of {time_text(at)} UTC"] if at is not None else []
    return "\n".join([*heading, _table(headers, table)])


HISTORY_COLUMNS = (
    "at",
    "model",
    "version",
    "kind",
    "from",
    "to",
    "by",
    "pr",
    "approved_by",
    "notes",
    "reason",
    "evidence",
)


HISTORY_HEADERS = ("WHEN (UTC)", "VERSION", "STEP", "BY", "PR", "APPROVED BY", "NOTES / REASON")
_STEPS = [f"{move[0]} -> {move[1]}" if move[0] else "registered" for move in map(move_of_code, range(MOVE_CODES))]
_MINUTE_US = 60_000_000


def history_text(history: History, *, one_model: bool = False) -> str:
    """The history as a table; its VERSION column names the model too unless ``one_model`` was asked for. Made
    from the kept moves' columns, column by column (15,000 rows at 100k: no tuple or call per cell)."""
    if not history.kept:
        return "no history matches"
    return aligned_columns(history_columns(history.kept, models=names_models(history, one_model=one_model)))


def names_models(history: History, *, one_model: bool) -> bool:
    """Whether the history table's VERSION column names the model: unless one model was asked for and shown."""
    return not one_model or len({name for name, *_ in history.kept}) > 1


def history_columns(kept: Sequence[tuple[str, Moves, int, str]], *, models: bool, head: bool = True) -> list[list[str]]:
    """The history table's columns for these kept moves (``History.kept`` or a part of it), each its header first
    unless not ``head``."""
    columns: list[list[str]] = [[header] if head else [] for header in HISTORY_HEADERS]
    when, version, step, by, pr, approvers, why = (column.append for column in columns)
    for name, moves, i, _ in kept:
        at, number, approved_by, notes, reason, evidence = moves.said[i]
        when(f"{at[:10]} {at[11:16]}" if at.endswith("+00:00") else _when(moves.at_us[i]))
        named = moves.versions[moves.version[i]]
        version(f"{name}@{named}" if models else named)
        step(_STEPS[moves.code[i]])
        by(moves.logins[moves.login[i]])
        pr(f"#{number}" if number else "-")
        approvers(",".join(approved_by) or "-")
        why(_why(notes, reason, evidence) if evidence or (notes and reason) else notes or reason or "")
    return columns


def _when(at_us: int) -> str:
    """A step's UTC minute, as ``time_text`` writes it, from its instant: for a step whose time as recorded is not
    in UTC (one in UTC is cut from that text)."""
    return datetime.fromtimestamp(at_us // _MINUTE_US * 60, UTC).isoformat(" ", "minutes")[:16]


def _why(notes: str | None, reason: str | None, evidence: Sequence[Mapping[str, Any]]) -> str:
    why = f"{notes}; {reason}" if notes and reason else notes or reason or ""
    if evidence:
        why += f" [evidence: {'; '.join(measure_text(m) for m in evidence)}]"
    return why


def history_csv(rows: Sequence[HistoryEntry]) -> str:
    """One CSV row per entry (``HISTORY_COLUMNS``); the evidence as compact JSON in its column."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    writer.writerows(map(history_csv_cells, rows))
    return out.getvalue().rstrip("\n")


def history_csv_cells(r: HistoryEntry) -> list[Any]:
    """An entry's CSV row (``HISTORY_COLUMNS``); the evidence as compact JSON in its column."""
    evidence = json.dumps(plain(r.evidence), separators=(",", ":")) if r.evidence else ""
    cells = [plain(r.at), r.model, r.version, r.kind, r.from_, r.to, r.by, r.pr, " ".join(r.approved_by)]
    return [*("" if c is None else c for c in cells), r.notes or "", r.reason or "", evidence]


def measure_text(m: Mapping[str, Any]) -> str:
    """One metric of auto-promote's evidence, e.g. ``accuracy (primary, max) 0.95 vs 0.94 (1.3.0): held``."""
    role = f"{m['role']}, {m['goal']}" + (f", ±{m['tolerance']:g}" if m.get("tolerance") else "")
    baseline = (
        f" vs {number_text(m.get('baseline_value'))} ({m['baseline']})" if m.get("baseline") else " (no baseline)"
    )
    on = f" on {m['eval_dataset']}" if m.get("eval_dataset") else ""
    return (
        f"{m['metric']} ({role}) {number_text(m.get('candidate'))}{baseline}{on}: {'held' if m['held'] else 'failed'}"
    )


def resolution_text(r: Resolution) -> str:
    when = f" at {r.at.isoformat()}" if r.at else ""
    until = f" until {r.until.isoformat()}" if r.until else " (still holds it)"
    storage = ", ".join(f"{k}={v}" for k, v in r.storage.items())
    return (
        f"{r.model}@{r.stage}{when}: {r.version}\n"
        f"  held {r.stage} since {r.since.isoformat()}{until}\n"
        f"  storage: {storage}\n"
        f"  record:  {r.path}"
    )


def show_text(record: VersionRecord, *, at: datetime | None = None) -> str:
    """A version; with ``at``, its stage then and only the transitions made by then. Read from the record's
    accessors, never its pydantic model: ``show`` then costs no pydantic import (benchmarks/audit.py)."""
    shown = [t for t in record.steps if at is None or t.at <= at]
    stage = f"{shown[-1].to if shown else 'candidate'} at {time_text(at)} UTC" if at is not None else record.stage
    lines = [
        f"{record.ref}  [{stage}]",
        f"  file:       {_relative(record.path)}",
        f"  created:    {record.created_at.isoformat()} by {record.created_by}",
        f"  parent:     {record.raw.get('parent') or '-'}",
        f"  trained on: {record.dataset} ({record.dataset_hash})",
    ]
    if code := record.raw["training"].get("code"):
        lines.append(f"  code:       {code['repo']}@{code['commit'][:12]}")
    scores = ", ".join(f"{k}={number_text(v)}" for k, v in record.scores.items())
    lines.append(f"  evals:      {scores}" + (f" on {record.eval_dataset}" if record.eval_dataset else ""))
    params = ", ".join(f"{k}={v}" for k, v in record.hyperparameters.items()) or "-"
    lines.append(f"  params:     {params}")
    files = record.raw["artifacts"]["files"]
    storage = {k: v for k, v in record.storage.items() if v is not None}
    lines.append(
        f"  artifacts:  {count_text(len(files), 'file')}, {size_text(sum(f['size'] for f in files))}; "
        + ", ".join(f"{k}={v}" for k, v in storage.items())
    )
    if canary := record.canary:
        since = datetime.fromisoformat(canary["started_at"]).isoformat()
        lines.append(f"  canary:     {canary['result']} at {canary['traffic_percent']:g}% since {since}")
    lines += [line for t in shown for line in _step_lines(t)]
    if later := len(record.steps) - len(shown):
        lines.append(f"  ({later} later transition{'s' if later > 1 else ''} not shown: after {time_text(at)} UTC)")
    return "\n".join(lines)


def _step_lines(t: Step) -> list[str]:
    """One transition as ``show`` prints it, and auto-promote's evidence under it."""
    extra = (f" pr #{t.pr}" if t.pr else "") + (f" approved by {', '.join(t.approved_by)}" if t.approved_by else "")
    why = f": {t.notes or t.reason}" if (t.notes or t.reason) else ""
    head = f"  {time_text(t.at)}  {t.from_} -> {t.to} by {t.by}{extra}{why}"
    return [head, *(f"      evidence: {measure_text(m)}" for m in t.evidence)]


def _relative(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def model_text(
    record: ModelRecord | None, versions: Sequence[VersionRecord], *, stages: Mapping[str, str] | None = None
) -> str:
    """A model and its versions; ``stages`` (version -> stage) overrides their current stages (``show --at``)."""
    lines = []
    config = record.data if record is not None else None
    if config is not None:
        lines += [
            f"{config.name}: {config.description or ''}".rstrip(),
            f"  owners:  {', '.join(config.owners)}",
            f"  primary: {config.primary_metric.name} ({config.primary_metric.goal})",
        ]
        if config.guard_metrics:
            guards = ", ".join(f"{g.name} ({g.goal}, ±{g.tolerance:g})" for g in config.guard_metrics)
            lines.append(f"  guards:  {guards}")
        if config.hub:
            lines.append(f"  hub:     {config.hub.repo}")
    metric = config.primary_metric.name if config else None
    now = stages or {}
    rows = [
        (r.version, now.get(r.version, r.stage), time_text(r.created_at), number_text(r.scores.get(metric or "")))
        for r in versions
    ]
    return "\n".join([*lines, "", _table(("VERSION", "STAGE", "CREATED", metric or "SCORE"), rows)])


def lineage_text(nodes: Sequence[LineageNode]) -> str:
    lines = []
    for node in nodes:
        pad = "  " * node.depth + ("└─ " if node.depth else "")
        if node.external:
            lines.append(f"{pad}{node.ref}  (external base)")
        elif node.missing:
            lines.append(f"{pad}{node.ref}  (not in the registry)")
        else:
            where = f" ({node.eval_dataset_source})" if node.eval_dataset_source else ""
            evals = f", evals on {node.eval_dataset}{where}" if node.eval_dataset else ""
            source = f"; {node.dataset_source}" if node.dataset_source else ""
            lines.append(f"{pad}{node.ref}  trained on {node.dataset} ({node.dataset_hash}{source}){evals}")
    return "\n".join(lines)


def diff_text(d: VersionDiff) -> str:
    lines = [f"{d.a} -> {d.b}", "", "evals:"]
    if not d.comparable:
        left, right = (x or "an unnamed eval set" for x in d.eval_dataset)
        lines.append(f"  not comparable: {d.a} was measured on {left}, {d.b} on {right}")
    for s in d.scores:
        mark = {True: "better", False: "worse", None: ""}[s.better]
        delta = f"{s.delta:+.4g}" if s.delta is not None else "-"
        primary = " (primary)" if s.metric == d.primary_metric else ""
        lines.append(f"  {s.metric}{primary}: {number_text(s.a)} -> {number_text(s.b)}  {delta} {mark}".rstrip())
    lines.append("hyperparameters:")
    changes = [f"  + {k}: {v}" for k, v in d.params_added.items()]
    changes += [f"  - {k}: {v}" for k, v in d.params_removed.items()]
    changes += [f"  ~ {k}: {a} -> {b}" for k, (a, b) in d.params_changed.items()]
    lines += changes or ["  (same)"]
    for label, (a, b) in (("dataset", d.dataset), ("eval dataset", d.eval_dataset), ("parent", d.parent)):
        lines.append(f"{label}: {a or '-'}" + (f" -> {b or '-'}" if a != b else " (same)"))
    if d.dataset[0] == d.dataset[1] and d.dataset_hash[0] != d.dataset_hash[1]:
        lines.append(f"dataset hash: {d.dataset_hash[0]} -> {d.dataset_hash[1]}")
    return "\n".join(lines)


# --- writes -------------------------------------------------------------------------------------


def plan_summary(plan: Plan, *, dry_run: bool) -> dict[str, Any]:
    return {
        "dry_run": dry_run,
        "changed": [os.path.relpath(c.path) for c in plan.changes],
        "steps": plan.steps,
        "notes": plan.notes,
    }


def plan_text(plan: Plan, *, dry_run: bool) -> str:
    lines = [*plan.steps, *plan.notes]
    if not plan.changes:
        lines.append("nothing to change")
    elif dry_run:
        # Imported here: only a dry run shows a diff.
        import difflib

        lines.append("dry run: nothing was written; the change would be:")
        for change in plan.changes:
            name = os.path.relpath(change.path)
            before = (change.before or "").splitlines(keepends=True)
            lines.append(
                "".join(difflib.unified_diff(before, change.after.splitlines(keepends=True), name, name)).rstrip()
            )
    return "\n".join(lines)


def register_text(result: RegisterResult) -> str:
    stored = f"{count_text(result.uploaded_files, 'file')} uploaded ({size_text(result.uploaded_bytes)})"
    if result.present_files:
        stored += f", {result.present_files} already stored"
    where = f" in pull request {result.pull}" if result.pull else ""
    return f"registered {os.path.relpath(result.path)} as a candidate{where}; {stored}"


def download_text(result: dict[str, Any]) -> str:
    files = result["files"]
    if not files:
        return f"{result['version']}: every file already in place and verified"
    return f"{result['version']}: {count_text(len(files), 'file')} downloaded and verified"


def chain_text(chain: Chain) -> str:
    """``regops verify``: one line per link (ok or BROKEN), who and when, then the verdict."""
    lines = [f"{chain.version} ({chain.stage})"]
    for link in chain.links:
        who = f" by {link.who}" if link.who else ""
        when = f" at {link.when}" if link.when else ""
        lines.append(f"  {link.name} {'ok' if link.ok else 'BROKEN'}{who}{when}: {link.detail}")
    lines.append("verified: every link holds" if chain.ok else "NOT verified: a link is broken")
    return "\n".join(lines)


def tree_hash_text(tree: TreeHash) -> str:
    return f"{tree.hash}  {count_text(tree.file_count, 'file')}, {size_text(tree.size_bytes)}"


# --- sync and retention ---------------------------------------------------------------------------


def sync_summary(result: SyncResult) -> dict[str, Any]:
    return {
        "check": result.check,
        "ok": result.ok,
        "differences": [d.as_json() for d in result.differences],
        "fixed": [d.as_json() for d in result.fixed],
    }


def sync_text(result: SyncResult) -> str:
    if not result.differences:
        return "in sync: nothing to change (Hub tags, stage branches, model cards and serving.json match the registry)"
    lines = []
    if result.check:
        lines.append(f"{len(result.differences)} difference(s) from the registry (run `regops sync` to fix):")
        lines += [f"  {d.message}" + ("" if d.fix else "  [sync cannot fix this]") for d in result.differences]
        return "\n".join(lines)
    if result.fixed:
        lines.append(f"changed {len(result.fixed)}:")
        lines += [f"  fixed: {d.message}" for d in result.fixed]
    if result.unfixed:
        lines.append(f"{len(result.unfixed)} difference(s) sync cannot fix:")
        lines += [f"  {d.message}" for d in result.unfixed]
    return "\n".join(lines)


def retention_text(decisions: Sequence[Decision], *, applied: bool = False) -> str:
    if not decisions:
        return "no versions"
    labels = {"keep": "keep hot", "move": "moved to cold" if applied else "move to cold", "cold": "cold"}
    labels["finish"] = "removed hot copy" if applied else "remove hot copy"
    rows = [(d.ref, labels[d.action], d.reason) for d in decisions]
    counts = {a: sum(1 for d in decisions if d.action == a) for a in labels}
    verb = "moved" if applied else "to move"
    summary = f"{counts['keep']} kept hot, {counts['move']} {verb}, {counts['cold']} already cold"
    if counts["finish"]:
        summary += f", {counts['finish']} leftover hot copies {'removed' if applied else 'to remove'}"
    return _table(("version", "weights", "why"), rows) + "\n\n" + summary


def doctor_text(findings: Sequence[Finding]) -> str:
    """One line per setting checked, ``ok`` or ``FAIL`` with the setting to change; failures counted at the end."""
    lines = [f"{'ok  ' if f.ok else 'FAIL'}  {f.check}: {f.message}" for f in findings]
    failed = sum(not f.ok for f in findings)
    lines.append(f"{failed} setting(s) to fix" if failed else "every setting the approvals gate relies on is in place")
    return "\n".join(lines)


def approvals_text(outcome: Outcome) -> str:
    """The approvals check in detail: per change, who counted, who is missing, which reviews did not count."""
    lines = [("pass: " if outcome.ok else "fail: ") + outcome.summary]
    lines += [f"  {problem}" for problem in outcome.problems]
    lines += [f"  {commit}" for commit in outcome.unlinked]
    for v in outcome.verdicts:
        mark = "ok" if v.ok else "missing"
        if v.need.denied:
            lines.append(f"{v.need.subject}: not allowed: {v.need.denied}")
            continue
        if v.move is not None:
            lines.append(
                f"{v.move.ref} {v.move.source} -> {v.move.target}: {len(v.counted)}/{v.needed} approvals ({mark})"
            )
        else:
            lines.append(f"{v.need.subject}: {len(v.counted)}/{v.needed} approvals ({mark})")
            lines += [f"  changes {path}" for path in v.need.paths]
        if v.counted:
            lines.append(f"  approved by: {', '.join(v.counted)}")
        if v.missing:
            lines.append(f"  needs {v.missing} more from: {', '.join(v.eligible) or 'nobody eligible'}")
        lines += [f"  changes requested by {who}" for who in v.blocking]
        lines += [f"  {who}'s approval does not count: {why}" for who, why in v.ignored]
        if v.canary_missing and v.move is not None:
            lines.append(f"  canary: {v.move.canary or 'none'} (prod needs a passed canary)")
    return "\n".join(lines)


# --- canary --------------------------------------------------------------------------------------


def _canary_title(check: Checked) -> str:
    against = f"prod {check.prod}" if check.prod else "no prod version"
    return f"{check.ref} (canary) vs {against}: {check.decision.verdict}"


def canary_text(checks: Sequence[Checked]) -> str:
    """The verdicts of ``regops canary check``, one table per canary, then the reasons."""
    if not checks:
        return "no canary in staging: nothing to check"
    blocks = []
    for check in checks:
        lines = [_canary_title(check), f"  {check.decision.summary}"]
        if check.decision.metrics:
            lines += ["  " + line for line in _table(CANARY_HEADERS, canary_rows(check)).splitlines()]
            lines += [f"  - {m.reason}" for m in check.decision.metrics]
        if check.pull:
            lines.append(f"  pull request: {check.pull}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def canary_plan_text(plans: Sequence[SamplePlan | str]) -> str:
    """``regops canary plan``: per guardrail, the requests per arm (and hours) a decision needs."""
    if not plans:
        return "no guardrails configured: a canary nobody measures is never a pass"
    rows = [
        [p.metric, p.part, _sample(p.pass_equal, p.hours_equal), _sample(p.fail_twice, p.hours_twice)]
        for p in plans
        if not isinstance(p, str)
    ]
    headers = ("guardrail", "allowance", "to pass when equal to prod (95%)", "to fail at twice the allowance (95%)")
    lines = _table(headers, rows).splitlines() if rows else []
    return "\n".join(lines + [f"- {p}" for p in plans if isinstance(p, str)])


def _sample(n: int, hours: float | None) -> str:
    if n >= 10**12:
        return "never"
    return f"{n:,} requests per arm" + (f", {hours:.3g} h" if hours is not None else "")
