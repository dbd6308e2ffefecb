"""The registry website's pages, rendered from :mod:`regops.site_data`'s models: one function per kind of page.

Every value from a file goes through :func:`html_text` on its way into a page; the charts are inline SVG drawn here,
and the one script (the "serving on" view, :mod:`regops.site_assets`) only looks up answers computed here.
"""

from __future__ import annotations

import functools
import html
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

from regops.publish import number_text, size_text, time_text
from regops.records import VersionRecord
from regops.registry import HOLDER_STAGES
from regops.site_assets import SERVING_FORM
from regops.site_data import ModelSite

__all__ = [
    "ModelSummary",
    "forget_cached",
    "html_text",
    "index_page",
    "model_page",
    "serving_page",
    "summary",
    "version_page",
]

# --- escaping and small parts ---------------------------------------------------------------


def html_text(value: object) -> str:
    """``value`` (from a file) as inert HTML text, for element content and quoted attributes alike."""
    text = value if type(value) is str else "" if value is None else str(value)
    # Most values have nothing to escape: five substring tests find out, quicker than a regular expression (a site
    # of 10,000 versions escapes millions of them).
    markup = "&" in text or "<" in text or ">" in text or '"' in text or "'" in text
    return html.escape(text, quote=True) if markup else text


@functools.cache
def _href(*parts: str) -> str:
    return html_text("/".join(quote(p) for p in parts))


def _link(href: str, text: object) -> str:
    return f'<a href="{href}">{html_text(text)}</a>'


@functools.lru_cache(maxsize=65536)  # a version is linked from its model's timeline, held table and versions table
def _version_link(model: str, version: str | None, up: str) -> str:
    return "–" if version is None else _link(up + _href("models", model, f"{version}.html"), version)


@functools.lru_cache(maxsize=65536)  # the same moments recur: a change is on its version's page and its model's
def _time(moment: datetime | None) -> str:
    return f'<time datetime="{moment.isoformat()}">{html_text(time_text(moment))}</time>' if moment else "–"


def _table(caption: str, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table of cells that are already HTML (escaped by the caller)."""
    return _framed(caption, headers, "".join(f"<tr><td>{'</td><td>'.join(row)}</td></tr>" for row in rows))


def _framed(caption: str, headers: Sequence[str], body: str) -> str:
    """A table around ``body``, its rows already HTML."""
    head = _head(tuple(headers))
    return f"<table><caption>{html_text(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@functools.cache  # a few header rows, on every page
def _head(headers: tuple[str, ...]) -> str:
    return "".join(f'<th scope="col">{html_text(h)}</th>' for h in headers)


def _page(title: str, body: str, *, up: str, script: str = "") -> str:
    links = f'<a href="{up}index.html">Models</a> · <a href="{up}serving.html">Serving on a date</a>'
    nav = f'<nav aria-label="Site">{links}</nav>'
    tail = f'<script src="{up}{script}"></script>' if script else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{html_text(title)} · regops</title><link rel="stylesheet" href="{up}style.css"></head>'
        f"<body><header>{nav}</header><main><h1>{html_text(title)}</h1>{body}</main>{tail}</body></html>\n"
    )


# --- the pages -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSummary:
    """What the index and the serving view show of one model, rendered by the process that renders its pages: its
    row of the index, and its serving changes as JSON (a few KB; its versions are megabytes)."""

    name: str
    row: tuple[str, ...]
    serving: str


def summary(model: ModelSite) -> ModelSummary:
    config = model.config.raw
    row = (
        _link(_href("models", model.name, "index.html"), model.name),
        html_text(config.get("description", "")),
        html_text(", ".join(config.get("owners", ()))),
        *(_version_link(model.name, model.current(stage), "") for stage in ("prod", "staging", "dev")),
        str(len(model.versions)),
    )
    serving = [[c.at.isoformat(), *(c.holders[s] for s in HOLDER_STAGES)] for c in model.serving]
    return ModelSummary(model.name, row, _script_json(serving))


def index_page(models: Sequence[ModelSummary], built_at: datetime) -> str:
    headers = ["Model", "Description", "Owners", "prod", "staging", "dev", "Versions"]
    body = f"<p>Built {_time(built_at)} UTC from the registry's files.</p>" + _table(
        "Models", headers, [m.row for m in models]
    )
    return _page("Model registry", body, up="")


def model_page(model: ModelSite) -> str:
    config = model.config.raw
    facts = [
        ("Owners", html_text(", ".join(config.get("owners", ())))),
        ("Task", html_text(config.get("task", ""))),
        ("Primary metric", html_text(f"{model.config.primary_metric} ({config['primary_metric']['goal']})")),
        *((stage, _version_link(model.name, model.current(stage), "../../")) for stage in ("prod", "staging", "dev")),
    ]
    body = (
        f"<p>{html_text(config.get('description', ''))}</p>{_facts(facts)}"
        f'<section aria-labelledby="timeline"><h2 id="timeline">Timeline</h2>{_timeline(model)}</section>'
        f'<section aria-labelledby="held"><h2 id="held">Who held each stage</h2>{_held(model)}</section>'
        f'<section aria-labelledby="evals"><h2 id="evals">Evals across versions</h2>{_charts(model)}</section>'
        f'<section aria-labelledby="lineage"><h2 id="lineage">Lineage</h2>{_lineage_graph(model)}</section>'
        f'<section aria-labelledby="versions"><h2 id="versions">Versions</h2>{_versions(model)}</section>'
    )
    return _page(model.name, body, up="../../")


def _facts(pairs: Iterable[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{html_text(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _timeline(model: ModelSite) -> str:
    name = model.name
    rows = "".join(
        f"<tr><td>{_time(e.at)}</td><td>{_version_link(name, e.version, '../../')}</td><td>{_move(e.from_, e.to)}</td>"
        f"<td>{html_text(e.by)}</td><td>{html_text(f'#{e.pr}' if e.pr else '–')}</td>"
        f"<td>{html_text(', '.join(e.approved_by) or '–')}</td><td>{html_text(e.reason or e.notes or '')}</td></tr>"
        for e in reversed(model.history)
    )
    headers = ("When (UTC)", "Version", "Change", "By", "PR", "Approved by", "Why")
    return _framed(f"Every change to {name}, newest first", headers, rows)


@functools.cache  # a handful of kinds of move, tens of thousands of rows
def _move(from_: str | None, to: str) -> str:
    rollback = ' <strong class="rollback">rollback</strong>' if from_ == "archived" and to == "prod" else ""
    return html_text(f"{from_ or 'registered'} → {to}") + rollback


def _held(model: ModelSite) -> str:
    ends, name = [c.at for c in model.serving[1:]] + [None], model.name
    rows = [
        [_time(change.at), _time(end), *(_version_link(name, change.holders[s], "../../") for s in HOLDER_STAGES)]
        for change, end in zip(model.serving, ends, strict=True)
    ]
    return _table("From each moment a holder changed until the next", ["From", "Until", *HOLDER_STAGES], rows)


def _versions(model: ModelSite) -> str:
    primary, name = model.config.primary_metric, model.name
    rows = [
        [
            _version_link(name, r.version, "../../"),
            html_text(r.stage),
            _time(r.created_at),
            html_text(number_text(r.scores.get(primary))),
            html_text(r.dataset),
        ]
        for r in reversed(model.versions)
    ]
    return _table("Versions, newest first", ["Version", "Stage", "Registered", primary, "Dataset"], rows)


# --- charts and the lineage graph -------------------------------------------------------------

CHART_W, CHART_H, PAD = 640, 220, 48


def _charts(model: ModelSite) -> str:
    scores = [(r.version, r.scores) for r in model.versions]
    metrics = sorted({m for _, s in scores for m in s}, key=lambda m: (m != model.config.primary_metric, m))
    if not metrics:
        return "<p>No eval scores recorded.</p>"
    return "".join(_chart(model.name, m, [(v, s[m]) for v, s in scores if m in s]) for m in metrics)


def _chart(model: str, metric: str, points: list[tuple[str, float]]) -> str:
    """One metric over the versions that report it, in SemVer order: an inline SVG line chart."""
    low, high = min(v for _, v in points), max(v for _, v in points)
    span = (high - low) or 1.0
    step = (CHART_W - 2 * PAD) / max(len(points) - 1, 1)
    xy = [(PAD + i * step, CHART_H - PAD - (v - low) / span * (CHART_H - 2 * PAD)) for i, (_, v) in enumerate(points)]
    dots = "".join(
        f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="4"><title>{html_text(f"{version}: {value:g}")}</title>'
        "</circle>"
        for (x, y), (version, value) in zip(xy, points, strict=True)
    )
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    labels = (
        f'<text x="4" y="{PAD}">{html_text(number_text(high))}</text>'
        f'<text x="4" y="{CHART_H - PAD}">{html_text(number_text(low))}</text>'
        f'<text x="{PAD}" y="{CHART_H - 12}">{html_text(points[0][0])}</text>'
        f'<text x="{CHART_W - PAD}" y="{CHART_H - 12}" text-anchor="end">{html_text(points[-1][0])}</text>'
    )
    title = f"{metric} of {model} across {len(points)} versions, from {number_text(low)} to {number_text(high)}"
    return (
        f'<figure class="chart" data-metric="{html_text(metric)}"><figcaption>{html_text(metric)}</figcaption>'
        f'<svg role="img" viewBox="0 0 {CHART_W} {CHART_H}" width="{CHART_W}" height="{CHART_H}">'
        f"<title>{html_text(title)}</title>"
        f'<polyline points="{line}" fill="none"/>{dots}{labels}</svg></figure>'
    )


ROW, LINEAGE_W = 24, 1000


def _lineage_graph(model: ModelSite) -> str:
    """Every version as a row, each parent joined to its child by an arc, the training data on the right."""
    rows, name = {r.version: i for i, r in enumerate(model.versions)}, model.name
    parts = []
    for i, record in enumerate(model.versions):
        y = ROW * i + ROW
        parts.append(_lineage_row(name, record, y, rows))
        parent = record.parent
        if parent and parent.startswith(f"{name}@") and parent.partition("@")[2] in rows:
            top = ROW * rows[parent.partition("@")[2]] + ROW
            bend = 160 - min(abs(y - top) / 2, 150)
            parts.append(f'<path class="edge" d="M160,{top - 4} C{bend},{top - 4} {bend},{y - 4} 160,{y - 4}"/>')
    height = ROW * len(model.versions) + ROW
    title = f"Lineage of {name}: each version joined to its parent, with its training dataset"
    # A group, not an image: its version labels are links.
    return (
        f'<svg role="group" aria-label="{html_text(title)}" class="lineage" viewBox="0 0 {LINEAGE_W} {height}" '
        f'width="{LINEAGE_W}" height="{height}">{"".join(parts)}</svg>'
    )


def _lineage_row(model: str, record: VersionRecord, y: int, rows: dict[str, int]) -> str:
    parent = record.parent
    inside = parent is not None and parent.startswith(f"{model}@") and parent.partition("@")[2] in rows
    note = f"parent {parent}" if parent and not inside else ""
    return (
        f'<a href="{_href(f"{record.version}.html")}"><text x="168" y="{y}">{html_text(record.version)}</text></a>'
        f'<text class="dataset" x="300" y="{y}">{html_text(record.dataset)}</text>'
        f'<text class="dataset" x="460" y="{y}">{html_text(note)}</text>'
    )


# --- a version -------------------------------------------------------------------------------


def version_page(model: ModelSite, record: VersionRecord) -> str:
    raw = record.raw
    facts = [
        ("Stage", html_text(record.stage)),
        ("Registered", f"{_time(record.created_at)} by {html_text(record.created_by)}"),
        ("Parent", _parent(record.parent)),
        ("Code", html_text(" @ ".join(str(v) for v in raw["training"].get("code", {}).values()) or "–")),
        ("Run", html_text(raw["training"].get("run_url", "–"))),
        ("Storage", html_text(", ".join(f"{k}: {v}" for k, v in record.storage.items()))),
        ("Signature", html_text(_plain(raw["signature"])) if "signature" in raw else "not signed"),
    ]
    body = (
        _facts(facts)
        + _section("files", "Files and digests", _files(record))
        + _section("data", "Datasets", _datasets(model, record))
        + _section("scores", "Eval scores", _pairs("Scores", record.scores))
        + _section("params", "Hyperparameters", _pairs("Hyperparameters", record.hyperparameters))
        + _section("canary", "Canary", _canary(record))
        + _section("transitions", "Transitions", _steps(record))
    )
    return _page(f"{model.name} {record.version}", body, up="../../")


def _section(key: str, title: str, content: str) -> str:
    return f'<section aria-labelledby="{key}"><h2 id="{key}">{html_text(title)}</h2>{content}</section>'


def _parent(parent: str | None) -> str:
    if parent is None:
        return "none"
    model, _, version = parent.partition("@")
    if parent.startswith("hf://") or not version:
        return html_text(parent)
    return _link("../" + _href(model, f"{version}.html"), parent)


def _plain(value: object) -> str:
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, _NESTED) else str(value)


_NESTED: Final = (dict, list)  # a tuple, not ``dict | list``: that union would be made again at every call


def _files(record: VersionRecord) -> str:
    rows = [
        [html_text(f["path"]), html_text(size_text(f["size"])), f"<code>{html_text(f['sha256'])}</code>"]
        for f in record.raw["artifacts"]["files"]
    ]
    return _table("Files of this version", ["Path", "Size", "sha256"], rows)


def _datasets(model: ModelSite, record: VersionRecord) -> str:
    training = record.raw["training"]
    facts = [
        ("Trained on", html_text(record.dataset)),
        ("Dataset hash", f"<code>{html_text(training['dataset_hash'])}</code>"),
        ("Evaluated on", html_text(record.eval_dataset or "–")),
    ]
    ancestry = [
        [
            html_text(n.ref),
            html_text(n.dataset or "–"),
            html_text(n.dataset_source or ("external" if n.external else "–")),
        ]
        for n in model.lineage[record.version]
    ]
    return _facts(facts) + _table(
        "This version and its ancestors, nearest first", ["Version", "Dataset", "Source"], ancestry
    )


def _pairs(caption: str, values: dict[str, Any]) -> str:
    if not values:
        return "<p>None recorded.</p>"
    rows = "".join(f"<tr><td>{html_text(k)}</td><td>{html_text(_plain(v))}</td></tr>" for k, v in values.items())
    return _framed(caption, ("Name", "Value"), rows)


def _canary(record: VersionRecord) -> str:
    if record.canary is None:
        return "<p>No canary ran for this version.</p>"
    return _pairs("Canary report", record.canary)


def _steps(record: VersionRecord) -> str:
    rows = [
        [
            _time(s.at),
            html_text(f"{s.from_} → {s.to}"),
            html_text(s.by),
            html_text(f"#{s.pr}" if s.pr else "–"),
            html_text(", ".join(s.approved_by) or "–"),
            html_text(s.reason or s.notes or ""),
        ]
        for s in record.steps
    ]
    return _table("Stage changes, oldest first", ["When (UTC)", "Change", "By", "PR", "Approved by", "Why"], rows)


# --- serving on a date --------------------------------------------------------------------------


def serving_page(models: Sequence[ModelSummary]) -> str:
    parts = ",".join(f"{_script_json(m.name)}:{m.serving}" for m in models)
    embedded = f'{{"stages":{_script_json(HOLDER_STAGES)},"models":{{{parts}}}}}'
    rows = [[_link(_href("models", m.name, "index.html"), m.name), "", "", ""] for m in models]
    body = (
        SERVING_FORM
        + _table("Serving at the chosen moment", ["Model", *HOLDER_STAGES], rows)
        + f'<script type="application/json" id="serving-data">{embedded}</script>'
    )
    return _page("Serving on a date", body, up="", script="serving.js")


def _script_json(value: object) -> str:
    """``value`` as JSON for a script element: "<" escaped, so no "</script>" or "<!--" in a value can end or
    change it."""
    return json.dumps(value, separators=(",", ":")).replace("<", "\\u003c")


def forget_cached() -> None:
    """Forget the links and times cached for one model's pages, once they are written: the next model's are others
    (at 100,000 versions, kept for every model they took ~65 MB a process)."""
    for cached in (_href, _version_link, _time):
        cached.cache_clear()
