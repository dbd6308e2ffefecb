"""Rendering results for people and programs: text, JSON, GitHub annotations, Mermaid.

Functions here turn values into strings; only the CLI writes them out.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from regops.kinds import Problem

if TYPE_CHECKING:
    from regops.approvals import Outcome
    from regops.canary import Checked
    from regops.datasets import TreeHash
    from regops.lifecycle import Plan, RegisterResult
    from regops.registry import (
        HistoryEntry,
        LineageNode,
        ModelRecord,
        ModelStatus,
        Registry,
        Resolution,
        ScoreDelta,
        StageSummary,
        VersionDiff,
        VersionRecord,
    )
    from regops.retention import Decision
    from regops.sync import SyncResult

__all__ = [
    "approvals_text",
    "canary_evidence",
    "canary_markdown",
    "canary_text",
    "diff_text",
    "download_text",
    "drift_issue",
    "history_text",
    "lineage_mermaid",
    "lineage_text",
    "md_code",
    "md_text",
    "model_card",
    "model_text",
    "plan_summary",
    "plan_text",
    "pr_comment",
    "problems_github",
    "problems_json",
    "problems_text",
    "register_text",
    "resolution_text",
    "retention_text",
    "review_page",
    "show_text",
    "status_text",
    "sync_summary",
    "sync_text",
    "to_json",
    "tree_hash_text",
]


# --- escaping what regops publishes ------------------------------------------------------------

# Shown as nothing, joins what it sits between: "@" + it is no @mention, "www" + it + "." no link.
WORD_JOINER = "\u2060"
_BREAKS = re.compile(r"[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+")
# Control characters, and the bidirectional overrides that make text read other than it is.
_INVISIBLE = re.compile(r"[\x00-\x08\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")
# Markup anywhere in a line: HTML and entities, code, emphasis, strikethrough, links and images, table cells,
# math, headings; an underscore only where it could open or close emphasis (not inside a word: latency_ms).
_MARKUP = re.compile(r"[\\`*~\[\]<>&|$#]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
# What GitHub turns into a link or a notification in plain text: @mentions and e-mail addresses, #123 and GH-123
# references, www. and scheme:// URLs.
_AUTOLINK = re.compile(r"@|#(?=\w)|(?i:\bgh-)(?=\d)|(?i:\bwww)(?=\.)|:(?=//)")
# What opens a block at the start of a line: a list item, a thematic break or setext underline, an ordered list
# item (the rest of a line's markers, `#`, `>`, `*`, backticks and `~`, are escaped wherever they are).
_BLOCK_START = re.compile(r"^([-+=](?=[-+=\s]|$)|\d{1,9}(?=[.)](?:\s|$)))")


def _one_line(value: object) -> str:
    return _INVISIBLE.sub("", _BREAKS.sub(" ", str(value)))


def md_text(value: object) -> str:
    """``value`` (taken from a file or a pull request) as inert text in GitHub Markdown, on one line.

    Shown as written, never as markup: no HTML or comment, heading, list, quote, link, image, emphasis, code,
    math, table cell break, @mention, #reference or autolink. For prose, headings and table cells alike. Every
    value from a file or a pull request goes through here (or :func:`md_code`); only regops' own text is Markdown.
    """
    text = _MARKUP.sub(lambda m: "\\" + m.group(), _one_line(value).strip())
    text = _AUTOLINK.sub(lambda m: m.group() + WORD_JOINER, text)
    return _BLOCK_START.sub(lambda m: m.group() + "\\" if m.group().isdigit() else "\\" + m.group(), text)


def md_code(value: object) -> str:
    """``value`` (from a file or a pull request) as an inline code span on one line: verbatim, monospaced, and
    inert (GitHub links and pings nothing in code). Not for table cells, where ``|`` ends the cell even in code:
    use :func:`md_text` there."""
    text = _one_line(value)
    if not text.strip():
        return md_text(text)
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if "`" in (text[0], text[-1]) or (text[0] == " " and text[-1] == " ") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _mermaid_label(value: object) -> str:
    """A Mermaid node label's text: what would end the label or the block, or be read as markup, as entity codes."""
    return re.sub(r"[\"#&<>`]", lambda m: f"#{ord(m.group())};", _one_line(value))


# --- JSON --------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name.rstrip("_"): _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Path):
        return value.as_posix()
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """Any result as indented JSON (datetimes as ISO 8601, ``from_`` as ``from``)."""
    return json.dumps(_plain(value), indent=2, allow_nan=False)


# --- problems --------------------------------------------------------------------------


def problems_text(problems: Sequence[Problem]) -> str:
    lines = [str(p) for p in problems]
    count = len(problems)
    files = len({p.path for p in problems})
    lines.append(
        f"{count} problem{'s' * (count != 1)} in {files} file{'s' * (files != 1)}" if count else "ok: no problems"
    )
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
        lines.append(f"::error {','.join(props)}::{_escape(p.message)}")
    return "\n".join(lines)


# --- tables --------------------------------------------------------------------------


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    return "\n".join(lines)


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _holder(summary: StageSummary | None) -> str:
    return f"{summary.version} ({_number(summary.score)})" if summary else "-"


def status_text(rows: Sequence[ModelStatus]) -> str:
    if not rows:
        return "no models yet: add one under registry/models/<model>/"
    table = [
        (
            r.model,
            r.primary_metric,
            _holder(r.prod),
            _when(r.prod_since),
            _holder(r.staging),
            _holder(r.dev),
            str(r.candidates),
            str(r.versions),
        )
        for r in rows
    ]
    return _table(("MODEL", "METRIC", "PROD", "PROD SINCE", "STAGING", "DEV", "CANDIDATES", "VERSIONS"), table)


def history_text(rows: Sequence[HistoryEntry]) -> str:
    table = []
    for r in rows:
        step = f"{r.from_} -> {r.to}" if r.from_ else "registered"
        why = "; ".join(x for x in (r.notes, r.reason) if x)
        approved = ",".join(r.approved_by) or "-"
        table.append((_when(r.at), r.version, step, r.by, f"#{r.pr}" if r.pr else "-", approved, why))
    return _table(("WHEN (UTC)", "VERSION", "STEP", "BY", "PR", "APPROVED BY", "NOTES / REASON"), table)


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


def show_text(record: VersionRecord) -> str:
    d = record.data
    lines = [
        f"{d.model}@{d.version}  [{d.stage}]",
        f"  file:       {_relative(record.path)}",
        f"  created:    {d.created_at.isoformat()} by {d.created_by}",
        f"  parent:     {d.parent or '-'}",
        f"  trained on: {d.training.dataset} ({d.training.dataset_hash})",
    ]
    if d.training.code:
        lines.append(f"  code:       {d.training.code.repo}@{d.training.code.commit[:12]}")
    scores = ", ".join(f"{k}={_number(v)}" for k, v in d.evals.scores.items())
    lines.append(f"  evals:      {scores}" + (f" on {d.evals.dataset}" if d.evals.dataset else ""))
    params = ", ".join(f"{k}={v}" for k, v in d.hyperparameters.items()) or "-"
    lines.append(f"  params:     {params}")
    total = sum(f.size for f in d.artifacts.files)
    storage = d.artifacts.storage.model_dump(exclude_none=True)
    lines.append(
        f"  artifacts:  {len(d.artifacts.files)} files, {_size(total)}; "
        + ", ".join(f"{k}={v}" for k, v in storage.items())
    )
    if d.canary:
        lines.append(
            f"  canary:     {d.canary.result} at {d.canary.traffic_percent:g}% since {d.canary.started_at.isoformat()}"
        )
    for t in d.transitions:
        extra = "".join(
            [
                f" pr #{t.pr}" if t.pr else "",
                f" approved by {', '.join(t.approved_by)}" if t.approved_by else "",
            ]
        )
        why = f": {t.notes or t.reason}" if (t.notes or t.reason) else ""
        lines.append(f"  {_when(t.at)}  {t.from_} -> {t.to} by {t.by}{extra}{why}")
    return "\n".join(lines)


def _relative(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def model_text(record: ModelRecord | None, versions: Sequence[VersionRecord]) -> str:
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
    rows = [(r.version, r.stage, _when(r.created_at), _number(r.scores.get(metric or ""))) for r in versions]
    return "\n".join([*lines, "", _table(("VERSION", "STAGE", "CREATED", metric or "SCORE"), rows)])


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def lineage_text(nodes: Sequence[LineageNode]) -> str:
    lines = []
    for node in nodes:
        pad = "  " * node.depth + ("└─ " if node.depth else "")
        if node.external:
            lines.append(f"{pad}{node.ref}  (external base)")
        elif node.missing:
            lines.append(f"{pad}{node.ref}  (not in the registry)")
        else:
            evals = f", evals on {node.eval_dataset}" if node.eval_dataset else ""
            source = f"; {node.dataset_source}" if node.dataset_source else ""
            lines.append(f"{pad}{node.ref}  trained on {node.dataset} ({node.dataset_hash}{source}){evals}")
    return "\n".join(lines)


def lineage_mermaid(nodes: Sequence[LineageNode]) -> str:
    ids = {node.ref: f"n{i}" for i, node in enumerate(nodes)}
    lines = ["flowchart BT"]
    datasets: dict[str, str] = {}
    for node in nodes:
        label = _mermaid_label(node.ref)
        shape = f'{ids[node.ref]}[["{label}"]]' if node.external else f'{ids[node.ref]}["{label}"]'
        lines.append(f"  {shape}")
        if node.dataset:
            key = datasets.setdefault(node.dataset, f"d{len(datasets)}")
            lines.append(f'  {key}[("{_mermaid_label(node.dataset)}")] -. trained .-> {ids[node.ref]}')
    for child, parent in itertools.pairwise(nodes):
        lines.append(f"  {ids[parent.ref]} --> {ids[child.ref]}")
    return "\n".join(lines)


def diff_text(d: VersionDiff) -> str:
    lines = [f"{d.a} -> {d.b}", "", "evals:"]
    for s in d.scores:
        mark = {True: "better", False: "worse", None: ""}[s.better]
        delta = f"{s.delta:+.4g}" if s.delta is not None else "-"
        primary = " (primary)" if s.metric == d.primary_metric else ""
        lines.append(f"  {s.metric}{primary}: {_number(s.a)} -> {_number(s.b)}  {delta} {mark}".rstrip())
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
    stored = f"{result.uploaded_files} files uploaded ({_size(result.uploaded_bytes)})"
    if result.present_files:
        stored += f", {result.present_files} already stored"
    where = f" in pull request {result.pull}" if result.pull else ""
    return f"registered {os.path.relpath(result.path)} as a candidate{where}; {stored}"


def download_text(result: dict[str, Any]) -> str:
    files = result["files"]
    if not files:
        return f"{result['version']}: every file already in place and verified"
    return f"{result['version']}: {len(files)} files downloaded and verified"


def tree_hash_text(tree: TreeHash) -> str:
    return f"{tree.hash}  {tree.file_count} files, {_size(tree.size_bytes)}"


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


def drift_issue(result: SyncResult) -> str:
    """The body of the drift issue: every difference, and how to fix it."""
    lines = [
        f"`regops sync --check` found {len(result.differences)} difference(s) between the registry and the outside:",
        "",
    ]
    lines += [f"- {md_text(d.message)}" + ("" if d.fix else " (sync cannot fix this)") for d in result.differences]
    lines += ["", "Run the `registry-sync` workflow (or `regops sync`) to put back what can be put back."]
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


# --- the Hub model card ----------------------------------------------------------------------------

CARD_STAGES = ("prod", "staging", "dev")


def _hub_base(registry: Registry, parent: str | None) -> str | None:
    """A parent as the Hub's ``base_model`` (a repo id): an hf:// base, or another model's Hub repo."""
    if parent is None:
        return None
    if parent.startswith("hf://"):
        return parent.removeprefix("hf://").split("@")[0]
    model = parent.split("@")[0]
    if model not in registry.model_names():
        return None
    hub = registry.model(model).raw.get("hub")
    return hub["repo"] if hub else None


def model_card(registry: Registry, name: str) -> str:
    """README.md for the model's Hub repo, generated from the registry (the same registry gives the same text).

    The front matter carries ``model-index`` (the Hub's evaluation results
    widget) for the version in prod (else staging, dev, the newest), and
    ``base_model`` from its parent when the parent is on the Hub.
    """
    from regops import store

    config = registry.model(name).raw
    versions = registry.versions(name)
    by_stage: dict[str, VersionRecord] = {r.stage: r for r in versions if r.stage in CARD_STAGES}
    shown = next((by_stage[s] for s in CARD_STAGES if s in by_stage), versions[-1] if versions else None)
    license_ = config.get("license")
    meta: dict[str, Any] = {}
    if license_:
        known = license_.lower() in _HUB_LICENSES
        meta["license"] = license_.lower() if known else "other"
        if not known:
            meta["license_name"] = license_
    meta["tags"] = ["regops"]
    if config.get("task"):
        meta["pipeline_tag"] = config["task"]
    if shown is not None:
        base = _hub_base(registry, shown.parent)
        if base and base != (config.get("hub") or {}).get("repo"):
            meta["base_model"] = base
        datasets = sorted({r.dataset.split("@")[0] for r in versions})
        meta["datasets"] = datasets
        eval_name = shown.eval_dataset or shown.dataset
        meta["model-index"] = [
            {
                "name": name,
                "results": [
                    {
                        "task": {"type": config.get("task") or "other"},
                        "dataset": {
                            "name": eval_name,
                            "type": eval_name.split("@")[0],
                            **({"revision": eval_name.split("@")[1]} if "@" in eval_name else {}),
                        },
                        "metrics": [
                            {"type": metric, "value": value, "name": f"{metric} ({shown.version})"}
                            for metric, value in sorted(shown.scores.items())
                        ],
                    }
                ],
            }
        ]
    primary = registry.model(name).primary_metric
    lines = ["---", store.dump(meta).rstrip(), "---", "", f"# {md_text(name)}", ""]
    lines += _paragraphs(config.get("description") or "")
    lines += ["## Stages", "", _row("stage", "version", "revision", primary), "|---|---|---|---|"]
    for stage in CARD_STAGES:
        record = by_stage.get(stage)
        revision = str(record.storage.get("revision", "-"))[:12] if record else "-"
        score = _number(record.scores.get(primary)) if record else "-"
        lines.append(_row(stage, record.version if record else "-", revision, score))
    lines += [
        "",
        'Load a stage with `huggingface_hub.snapshot_download(repo_id, revision="prod")`, or pin the commit.',
        "",
        "## Versions",
        "",
        _row("version", "stage", "created", "by", primary, "trained on", "weights"),
        "|---|---|---|---|---|---|---|",
    ]
    lines += [_version_row(record, primary) for record in reversed(versions)]
    if shown is not None:
        lines += ["", "## Lineage", "", f"{md_code(shown.ref)} and its ancestors:", ""]
        lines += ["```mermaid", lineage_mermaid(registry.lineage(shown.ref)), "```"]
    lines += [
        "",
        "---",
        f"Generated by regops from {md_code(f'registry/models/{name}/')}. Edits made here are overwritten by "
        "`regops sync`.",
        "",
    ]
    return "\n".join(lines)


def _row(*cells: object) -> str:
    """A Markdown table row of values, each escaped (a ``|`` or a line break in one cannot split the row)."""
    return "| " + " | ".join(md_text(cell) for cell in cells) + " |"


def _paragraphs(text: str) -> list[str]:
    """Free text (a description) as escaped paragraphs, each followed by a blank line."""
    paragraphs = [" ".join(block.split()) for block in re.split(r"\n\s*\n", text.strip())]
    return [line for paragraph in paragraphs if paragraph for line in (md_text(paragraph), "")]


def _version_row(record: VersionRecord, primary: str) -> str:
    storage = record.storage
    tier = storage.get("tier", "hot")
    if storage.get("backend") == "hf":
        where = f"{storage.get('repo')}@{str(storage.get('revision', ''))[:12]} ({tier})"
    else:
        where = f"{storage.get('backend')} ({tier})"
    score = _number(record.scores.get(primary))
    return _row(record.version, record.stage, _when(record.created_at), record.created_by, score, record.dataset, where)


# License ids the Hub knows (a subset: the common ones); anything else is `other` + `license_name`.
_HUB_LICENSES = frozenset(
    {
        "apache-2.0",
        "mit",
        "bsd-3-clause",
        "bsd-2-clause",
        "cc-by-4.0",
        "cc-by-sa-4.0",
        "cc-by-nc-4.0",
        "cc0-1.0",
        "gpl-3.0",
        "lgpl-3.0",
        "mpl-2.0",
        "openrail",
        "creativeml-openrail-m",
        "llama2",
        "llama3",
        "gemma",
        "unlicense",
    }
)


# --- pull requests: the review page, CODEOWNERS --------------------------------------------------

REVIEW_MARKER = "<!-- regops:review -->"


def _arrow(delta: ScoreDelta) -> str:
    if delta.better is None:
        return ""
    return "▲" if delta.better else "▼"


def _scores_table(registry: Registry, record: VersionRecord, against: Sequence[tuple[str, VersionRecord]]) -> list[str]:
    """Eval scores of ``record`` beside each version it is compared with, deltas marked ▲ better / ▼ worse."""
    heads = ["metric", record.version] + [f"{label} {other.version}" for label, other in against]
    lines = [_row(*heads), "|" + "---|" * len(heads)]
    diffs = [registry.diff(other.ref, record.ref) for _, other in against]
    primary = registry.model(record.model).primary_metric
    for metric in sorted(record.scores, key=lambda m: (m != primary, m)):
        cells = [f"**{md_text(metric)}** (primary)" if metric == primary else md_text(metric)]
        cells.append(_number(record.scores[metric]))
        for diff in diffs:
            delta = next((d for d in diff.scores if d.metric == metric), None)
            if delta is None or delta.a is None:
                cells.append("-")
            else:
                change = f" ({delta.delta:+.4g} {_arrow(delta)})".replace(" )", ")") if delta.delta else " (same)"
                cells.append(f"{_number(delta.a)}{change}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _holders(
    registry: Registry, before: Registry, record: VersionRecord, target: str
) -> list[tuple[str, VersionRecord]]:
    """The versions ``record`` is compared with: the current holders of ``target`` and of prod on ``before``, as
    ``registry`` has them (their evals never change), each once, never ``record`` itself."""
    on_base = before.versions(record.model) if record.model in before.model_names() else []
    holders = {r.stage: r.ref for r in on_base if r.stage in ("staging", "prod")}
    against: list[tuple[str, VersionRecord]] = []
    for stage in dict.fromkeys((target, "prod")):
        found = registry.find(holders[stage]) if stage in holders else None
        if found is not None and found.ref != record.ref and found.ref not in (r.ref for _, r in against):
            against.append((f"current {stage}", found))
    return against


def _comparison(registry: Registry, record: VersionRecord, against: Sequence[tuple[str, VersionRecord]]) -> list[str]:
    """Evals against the holders; hyperparameters and data against the first of them."""
    lines = ["### Evals", "", *_scores_table(registry, record, against), ""]
    diff = registry.diff(against[0][1].ref, record.ref)
    changes = [f"- {md_code(k)}: {md_text(v)} (new)" for k, v in diff.params_added.items()]
    changes += [f"- {md_code(k)}: {md_text(v)} (removed)" for k, v in diff.params_removed.items()]
    changes += [f"- {md_code(k)}: {md_text(a)} → {md_text(b)}" for k, (a, b) in diff.params_changed.items()]
    lines += [f"### Hyperparameters (vs {md_code(against[0][1].version)})", "", *(changes or ["- same"]), ""]
    before, after = diff.dataset
    data = f"{md_code(before)} → {md_code(after)}" if before != after else f"{md_code(after)} (same)"
    if before == after and diff.dataset_hash[0] != diff.dataset_hash[1]:
        data += f"; hash {md_code(diff.dataset_hash[0])} → {md_code(diff.dataset_hash[1])}"
    return [*lines, f"### Data\n\n- training: {data}", f"- eval: {md_code(record.eval_dataset or '-')}", ""]


def _weights(record: VersionRecord) -> list[str]:
    files = record.raw["artifacts"]["files"]
    total = sum(f["size"] for f in files)
    lines = [f"### Weights: {_size(total)} in {len(files)} files", ""]
    for f in files:
        digest = "sha256:" + str(f["sha256"])[:12] + "…"
        lines.append(f"- {md_code(f['path'])} {_size(f['size'])} {md_code(digest)}")
    return [*lines, ""]


def _canary_section(record: VersionRecord) -> list[str]:
    canary = record.canary
    verdict = f"**{md_text(canary['result'])}**" if canary else "**none recorded**"
    summary = f": {md_text(canary['summary'])}" if canary and canary.get("summary") else ""
    return [f"### Canary: {verdict}{summary}", ""]


def review_page(
    registry: Registry, moves: Sequence[tuple[VersionRecord, str, str]], *, before: Registry | None = None
) -> str:
    """The body of a promotion pull request: what moves, how it compares, where it comes from.

    ``moves`` are (version, from stage, to stage). ``registry`` holds every
    version shown, and the versions they are compared with (a pull request's
    head, which may add the version it moves); the current holders of the
    stages are read from ``before`` (the base branch; default ``registry``),
    i.e. as they are before the change. Every value from a file is escaped.
    """
    lines = [REVIEW_MARKER]
    for record, source, target in moves:
        against = _holders(registry, before or registry, record, target)
        lines += [f"## {md_code(record.ref)}: {md_text(source)} → {md_text(target)}", ""]
        if against:
            lines += _comparison(registry, record, against)
        else:
            lines += ["### Evals", "", *(f"- {md_text(m)}: {_number(v)}" for m, v in sorted(record.scores.items())), ""]
        lines += _weights(record)
        if target == "prod":
            lines += _canary_section(record)
        lines += ["### Lineage", "", "```mermaid", lineage_mermaid(registry.lineage(record.ref)), "```", ""]
    return "\n".join(lines).rstrip() + "\n"


def pr_comment(problems: Sequence[Problem], page: str, *, marker: str) -> str:
    """The one regops comment on a pull request: the validation result, then the review page."""
    lines = [marker, "## regops validate", ""]
    if problems:
        lines += [f"**{len(problems)} problem(s)** — the change cannot merge until they are fixed:", ""]
        lines += [_problem_item(p) for p in problems]
    else:
        lines.append("No problems.")
    if page:
        lines += ["", page.removeprefix(REVIEW_MARKER).strip()]
    return "\n".join(lines) + "\n"


def _problem_item(problem: Problem) -> str:
    where = problem.path + (f":{problem.line}" if problem.line else "")
    field = f"{md_text(problem.field)}: " if problem.field else ""
    return f"- {md_code(where)} {field}{md_text(problem.message)}"


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


def _canary_rows(check: Checked) -> list[list[str]]:
    from regops.canary import show

    return [
        [
            m.metric,
            m.kind,
            m.verdict,
            show(m.kind, m.canary),
            show(m.kind, m.prod),
            show(m.kind, m.limit),
            f"{m.n_canary} / {m.n_prod}",
            "-" if m.p_value is None else f"{m.p_value:.2g}",
        ]
        for m in check.decision.metrics
    ]


CANARY_HEADERS = ("guardrail", "kind", "verdict", "canary", "prod", "limit", "requests canary / prod", "p")


def _canary_title(check: Checked) -> str:
    against = f"prod {check.prod}" if check.prod else "no prod version"
    return f"{check.ref} (canary) vs {against}: {check.decision.verdict}"


def _canary_heading(check: Checked) -> str:
    """:func:`_canary_title` in Markdown, its values escaped."""
    against = f"prod {md_code(check.prod)}" if check.prod else "no prod version"
    return f"### Canary: {md_code(check.ref)} (canary) vs {against}: {md_text(check.decision.verdict)}"


def canary_text(checks: Sequence[Checked]) -> str:
    """The verdicts of ``regops canary check``, one table per canary, then the reasons."""
    if not checks:
        return "no canary in staging: nothing to check"
    blocks = []
    for check in checks:
        lines = [_canary_title(check), f"  {check.decision.summary}"]
        if check.decision.metrics:
            lines += ["  " + line for line in _table(CANARY_HEADERS, _canary_rows(check)).splitlines()]
            lines += [f"  - {m.reason}" for m in check.decision.metrics]
        if check.pull:
            lines.append(f"  pull request: {check.pull}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def canary_evidence(check: Checked) -> str:
    """One canary's verdict as Markdown: the evidence in the body of the pull request it opens."""
    lines = [_canary_heading(check), "", md_text(check.decision.summary), ""]
    if check.decision.metrics:
        lines += [_row(*CANARY_HEADERS), "|" + "---|" * len(CANARY_HEADERS)]
        lines += [_row(*row) for row in _canary_rows(check)]
        lines += ["", *(f"- {md_text(m.reason)}" for m in check.decision.metrics)]
    return "\n".join(lines)


def canary_markdown(checks: Sequence[Checked]) -> str:
    if not checks:
        return "No canary in staging: nothing to check."
    return "\n\n".join(canary_evidence(c) + (f"\n\nPull request: {c.pull}" if c.pull else "") for c in checks)
