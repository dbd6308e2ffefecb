"""What regops publishes: the review page and the pull request comment, the drift issue, the canary evidence,
the Hub model card — and the escaping every value from a file or a pull request goes through on its way there
(:func:`md_text`, :func:`md_code`).

Functions here turn values into Markdown; the flows post it (:mod:`regops.flows`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from regops import store
from regops.guardrails import show
from regops.kinds import Problem

if TYPE_CHECKING:
    from regops.canary import Checked, MetricResult
    from regops.records import VersionRecord
    from regops.registry import LineageNode, Registry, ScoreDelta, VersionDiff
    from regops.sync import SyncResult

__all__ = [
    "CANARY_HEADERS",
    "REVIEW_MARKER",
    "WORD_JOINER",
    "canary_evidence",
    "canary_markdown",
    "canary_rows",
    "drift_issue",
    "lineage_mermaid",
    "md_code",
    "md_text",
    "model_card",
    "number_text",
    "pr_comment",
    "review_page",
    "size_text",
    "time_text",
]


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


def drift_issue(result: SyncResult) -> str:
    """The body of the drift issue: every difference, and how to fix it."""
    lines = [
        f"`regops sync --check` found {len(result.differences)} difference(s) between the registry and the outside:",
        "",
    ]
    lines += [f"- {md_text(d.message)}" + ("" if d.fix else " (sync cannot fix this)") for d in result.differences]
    lines += ["", "Run the `registry-sync` workflow (or `regops sync`) to put back what can be put back."]
    return "\n".join(lines)


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

    config = registry.model(name).raw
    versions = registry.versions(name)
    by_stage: dict[str, VersionRecord] = {r.stage: r for r in versions if r.stage in CARD_STAGES}
    shown = next((by_stage[s] for s in CARD_STAGES if s in by_stage), versions[-1] if versions else None)
    meta = _card_meta(registry, name, config, versions, shown)
    primary = registry.model(name).primary_metric
    lines = ["---", store.dump(meta).rstrip(), "---", "", f"# {md_text(name)}", ""]
    lines += _paragraphs(config.get("description") or "")
    lines += _card_tables(versions, by_stage, primary)
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


def _card_meta(
    registry: Registry, name: str, config: dict[str, Any], versions: list[VersionRecord], shown: VersionRecord | None
) -> dict[str, Any]:
    """The model card's front matter: license, tags, task, base model, datasets and ``model-index``."""
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
        meta["model-index"] = _model_index(name, config, shown)
    return meta


def _model_index(name: str, config: dict[str, Any], shown: VersionRecord) -> list[dict[str, Any]]:
    """The Hub's evaluation results widget: the scores of ``shown`` on its eval dataset."""
    eval_name = shown.eval_dataset or shown.dataset
    return [
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


def _card_tables(versions: list[VersionRecord], by_stage: dict[str, VersionRecord], primary: str) -> list[str]:
    """The model card's stage table and version table."""
    lines = ["## Stages", "", _row("stage", "version", "revision", primary), "|---|---|---|---|"]
    for stage in CARD_STAGES:
        record = by_stage.get(stage)
        revision = str(record.storage.get("revision", "-"))[:12] if record else "-"
        score = number_text(record.scores.get(primary)) if record else "-"
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
    return lines


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
    score = number_text(record.scores.get(primary))
    return _row(
        record.version, record.stage, time_text(record.created_at), record.created_by, score, record.dataset, where
    )


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
        cells.append(number_text(record.scores[metric]))
        for diff in diffs:
            delta = next((d for d in diff.scores if d.metric == metric), None)
            if not diff.comparable:
                cells.append(f"{number_text(delta.a if delta else None)} ({_not_comparable(diff)})")
            elif delta is None or delta.a is None:
                cells.append("-")
            else:
                change = f" ({delta.delta:+.4g} {_arrow(delta)})".replace(" )", ")") if delta.delta else " (same)"
                cells.append(f"{number_text(delta.a)}{change}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _not_comparable(diff: VersionDiff) -> str:
    """A review page's cell for scores measured on different eval sets: both sets named, no delta."""
    a, b = (md_code(x) if x else "an unnamed eval set" for x in diff.eval_dataset)
    return f"not comparable: on {a}, this version on {b}"


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
    lines = [f"### Weights: {size_text(total)} in {count_text(len(files), 'file')}", ""]
    for f in files:
        digest = "sha256:" + str(f["sha256"])[:12] + "…"
        lines.append(f"- {md_code(f['path'])} {size_text(f['size'])} {md_code(digest)}")
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
            lines += [
                "### Evals",
                "",
                *(f"- {md_text(m)}: {number_text(v)}" for m, v in sorted(record.scores.items())),
                "",
            ]
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


def canary_rows(check: Checked) -> list[list[str]]:

    return [
        [
            m.metric,
            m.kind,
            m.verdict,
            show(m.kind, m.canary),
            show(m.kind, m.prod),
            show(m.kind, m.limit),
            f"{m.n_canary} / {m.n_prod}",
            _evidence(m),
        ]
        for m in check.decision.metrics
    ]


CANARY_HEADERS = (
    "guardrail",
    "kind",
    "verdict",
    "canary",
    "prod",
    "limit",
    "requests canary / prod",
    "shown (looks)",
)


def _evidence(m: MetricResult) -> str:
    """What the bounds showed and after how many checks; a record from before them: its fixed-sample p-value."""
    if m.method:
        return f"{m.headline().removeprefix(m.metric).strip()} ({m.looks})"
    return "-" if m.p_value is None else f"p={m.p_value:.2g} (fixed-sample test)"


def _canary_heading(check: Checked) -> str:
    """:func:`_canary_title` in Markdown, its values escaped."""
    against = f"prod {md_code(check.prod)}" if check.prod else "no prod version"
    return f"### Canary: {md_code(check.ref)} (canary) vs {against}: {md_text(check.decision.verdict)}"


def canary_evidence(check: Checked) -> str:
    """One canary's verdict as Markdown: the evidence in the body of the pull request it opens."""
    lines = [_canary_heading(check), "", md_text(check.decision.summary), ""]
    if check.decision.metrics:
        lines += [_row(*CANARY_HEADERS), "|" + "---|" * len(CANARY_HEADERS)]
        lines += [_row(*row) for row in canary_rows(check)]
        lines += ["", *(f"- {md_text(m.reason)}" for m in check.decision.metrics)]
    return "\n".join(lines)


def canary_markdown(checks: Sequence[Checked]) -> str:
    if not checks:
        return "No canary in staging: nothing to check."
    return "\n\n".join(canary_evidence(c) + (f"\n\nPull request: {c.pull}" if c.pull else "") for c in checks)


def time_text(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "-"


def number_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _mermaid_label(value: object) -> str:
    """A Mermaid node label's text: what would end the label or the block, or be read as markup, as entity codes."""
    return re.sub(r"[\"#&<>`]", lambda m: f"#{ord(m.group())};", _one_line(value))


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


def count_text(n: int, noun: str) -> str:
    """``1 file``, ``2 files``: a count with its noun, plural unless it is one."""
    return f"{n} {noun}{'s' * (n != 1)}"


def size_text(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"
