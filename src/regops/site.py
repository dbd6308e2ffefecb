"""The registry website: static HTML pages built from the loaded registry, viewable offline.

:func:`site_data` gathers everything the pages show, through the registry's own queries (``history``,
``holder`` — the stage-at-time rule ``resolve --at`` uses —, ``lineage``); :func:`build` renders it and writes
the pages. Every value from a file goes through :func:`html_text` on its way into a page; the charts are inline
SVG drawn here, and the one script (the "serving on" view) only looks up answers computed here.
"""

from __future__ import annotations

import functools
import html
import itertools
import json
import multiprocessing
import operator
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from regops.errors import RegopsError
from regops.kinds import Stage
from regops.publish import number_text, size_text, time_text
from regops.records import ModelRecord, VersionRecord
from regops.registry import HOLDER_STAGES, HistoryEntry, Interval, LineageNode, Registry

__all__ = ["MARKER", "ModelSite", "ServingChange", "SiteData", "SiteError", "build", "html_text", "site_data"]

# Written into every site regops builds: a folder with it may be replaced by a new build; one without it is not ours.
MARKER: Final = ".regops-site"


class SiteError(RegopsError):
    """The site cannot be written where it was asked to go."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        super().__init__(message)


# A version page lists this many of its lineage, nearest first (itself included); each ancestor's page goes on.
ANCESTRY: Final = 6

# --- the data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServingChange:
    """From ``at`` on (until the next change), these versions held dev, staging and prod."""

    at: datetime
    holders: dict[Stage, str | None]


@dataclass(frozen=True)
class ModelSite:
    config: ModelRecord
    versions: list[VersionRecord]
    history: list[HistoryEntry]
    serving: list[ServingChange]
    lineage: dict[str, list[LineageNode]]  # version -> the version and its nearest ancestors
    holders: dict[Stage, str | None]  # now, as `regops status` says

    @property
    def name(self) -> str:
        return self.config.name

    def current(self, stage: Stage) -> str | None:
        return self.holders[stage]


@dataclass(frozen=True)
class SiteData:
    models: list[ModelSite]
    built_at: datetime


def site_data(registry: Registry, *, now: datetime | None = None) -> SiteData:
    """Everything the site shows, for every model: the one place its data comes from."""
    registry.load_all()
    models = [_model_site(registry, name) for name in registry.model_names()]
    return SiteData(models, now or datetime.now(UTC))


def _model_site(registry: Registry, name: str) -> ModelSite:
    versions = registry.versions(name)
    lineage = _lineages(registry, versions)
    holders = {stage: _version(registry.holder(name, stage)) for stage in HOLDER_STAGES}
    return ModelSite(registry.model(name), versions, registry.history(name), _serving(registry, name), lineage, holders)


def _lineages(registry: Registry, versions: list[VersionRecord]) -> dict[str, list[LineageNode]]:
    """``lineage(ref, limit=ANCESTRY)`` of every version, walked once per model: a version whose parent (in this
    model) came before it is its own node and then its parent's list, one deeper — the walk ``lineage`` would take.
    Any other version (a root, a parent elsewhere, missing or later, a cycle) is asked of ``lineage`` itself."""
    chains: dict[str, list[LineageNode]] = {}
    for record in versions:
        model, _, version = (record.parent or "").partition("@")
        above = chains.get(version) if model == record.model else None
        if above is None or any(node.ref == record.ref for node in above):
            chains[record.version] = registry.lineage(record.ref, limit=ANCESTRY)
            continue
        deeper = [_deeper(node) for node in above[: ANCESTRY - 1]]
        chains[record.version] = registry.lineage(record.ref, limit=1) + deeper
    return chains


def _deeper(node: LineageNode) -> LineageNode:
    """The same node one step further from the version asked about: a copy with ``depth`` + 1 (made without the
    frozen dataclass's ``__init__``, three times quicker; 50,000 of them at 10,000 versions)."""
    copy = object.__new__(LineageNode)
    copy.__dict__.update(node.__dict__, depth=node.depth + 1)
    return copy


def _serving(registry: Registry, name: str) -> list[ServingChange]:
    """Who held each stage from every moment a holder changed: ``holder(at=…)`` asked at each moment one of that
    stage's intervals starts or ends (between them its answer cannot change)."""
    intervals = registry.model_entry(name).intervals_by_stage
    asked = sorted(
        (t, i, _version(registry.holder(name, stage, at=t)))
        for i, stage in enumerate(HOLDER_STAGES)
        for t in _bounds(intervals.get(stage, []))
    )
    current: list[str | None] = [None] * len(HOLDER_STAGES)
    changes: list[ServingChange] = []
    for moment, answers in itertools.groupby(asked, key=operator.itemgetter(0)):
        for _, i, version in answers:
            current[i] = version
        holders = dict(zip(HOLDER_STAGES, current, strict=True))
        if not changes or changes[-1].holders != holders:
            changes.append(ServingChange(moment, holders))
    return changes


def _bounds(intervals: list[Interval]) -> set[datetime]:
    return {t for i in intervals for t in (i.start, i.end) if t is not None}


def _version(span: Interval | None) -> str | None:
    return span.version if span is not None else None


# --- writing -------------------------------------------------------------------------------


def build(data: SiteData, out: Path, *, workers: int | None = None) -> list[Path]:
    """Write the site into ``out`` (replacing a site regops built there before); the pages written.

    ``workers``: processes that render the model and version pages (default: one per core for a large site)."""
    _check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".site-", dir=out.parent))
    try:
        previous = out if (out / MARKER).is_file() else None
        pages = _write_pages(data, _Tree(staging, previous), workers or _workers(data))
        old = _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old)
    return [out / p for p in pages]


def _swap(staging: Path, out: Path) -> Path | None:
    """Put the new site at ``out`` with two renames; the old one, moved aside, is for the caller to delete."""
    if not out.exists():
        staging.rename(out)
        return None
    old = Path(tempfile.mkdtemp(prefix=".site-old-", dir=out.parent))
    out.rename(old / "site")
    try:
        staging.rename(out)
    except BaseException:
        (old / "site").rename(out)
        old.rmdir()
        raise
    return old


def _check_out(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise SiteError(out, f"{out} is not a folder: pass --out a folder for the site")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise SiteError(
            out,
            f"{out} has files and no {MARKER}: it is not a site regops built, so nothing was written; "
            "pass --out an empty or new folder",
        )


# A site with fewer pages than this is rendered in one process: starting another costs more than it saves.
PARALLEL_FROM: Final = 2000


def _workers(data: SiteData) -> int:
    pages = sum(len(m.versions) + 1 for m in data.models)
    forks = "fork" in multiprocessing.get_all_start_methods()
    return max(1, min(os.cpu_count() or 1, len(data.models))) if forks and pages >= PARALLEL_FROM else 1


def _write_pages(data: SiteData, tree: _Tree, workers: int) -> list[str]:
    """Write every file of the site into ``tree``; the pages written (relative), models in order.

    The model and version pages are rendered in ``workers`` processes, each taking every n-th model: they are
    forked, so each reads ``data`` from the memory it shares with this one and nothing is sent to them."""
    shared = {"index.html": _index(data), "serving.html": _serving_page(data), "style.css": STYLE}
    written = tree.write({**shared, "serving.js": SERVING_SCRIPT})
    tree.write({MARKER: "built by regops site build\n"})
    (tree.root / "models").mkdir()
    if workers == 1:
        return written + [page for pages in _write_models(data, tree, 0, 1) for page in pages]
    global _FORKED  # noqa: PLW0603 -- what the forked workers read; set only while they run
    _FORKED = data
    try:
        with multiprocessing.get_context("fork").Pool(workers - 1) as pool:
            shares = pool.starmap_async(_write_forked, [(tree, i, workers) for i in range(1, workers)])
            mine = _write_models(data, tree, 0, workers)
            theirs = shares.get()
    finally:
        _FORKED = None
    by_model = itertools.chain.from_iterable(itertools.zip_longest(mine, *theirs))
    return written + [page for pages in by_model if pages for page in pages]


_FORKED: SiteData | None = None


def _write_forked(tree: _Tree, share: int, workers: int) -> list[list[str]]:
    assert _FORKED is not None
    return _write_models(_FORKED, tree, share, workers)


def _write_models(data: SiteData, tree: _Tree, share: int, workers: int) -> list[list[str]]:
    """The pages of every ``workers``-th model from ``share`` on, written; per model, the pages (relative)."""
    written = []
    for model in data.models[share::workers]:
        folder = f"models/{model.name}"
        (tree.root / folder).mkdir()
        pages = {f"{folder}/index.html": _model_page(model)}
        pages.update((f"{folder}/{r.version}.html", _version_page(model, r)) for r in model.versions)
        written.append(tree.write(pages))
    return written


@dataclass(frozen=True)
class _Tree:
    """The folder a site is written into, and the site regops built before at ``--out`` (or None)."""

    root: Path
    previous: Path | None

    def write(self, files: dict[str, str]) -> list[str]:
        """Write each file (its folder exists); their names. The site is renamed into place whole: no fsync."""
        reuse = self.previous is not None and not any(_symlinked(self.previous, name) for name in files)
        for relative, text in files.items():
            data, path = text.encode(), self.root / relative
            if not (reuse and self._reuse(relative, data, path)):
                with path.open("xb") as f:
                    f.write(data)
        return list(files)

    def _reuse(self, relative: str, data: bytes, path: Path) -> bool:
        """Link the previous build's copy of a page that has not changed, rather than write it again: a rebuild
        then writes only what changed, and deleting the old site only drops names. Only a regular file with no
        other name is reused (never a link to something outside the site)."""
        assert self.previous is not None
        old = self.previous / relative
        try:
            fd = os.open(old, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return False
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size != len(data) or f.read() != data:
                return False
        try:
            os.link(old, path, follow_symlinks=False)
        except OSError:
            return False
        return True


def _symlinked(root: Path, relative: str) -> bool:
    """Whether a folder on the way from ``root`` to ``relative`` is a symbolic link (it may lead out of the site)."""
    parts = Path(relative).parent.parts
    return any((root.joinpath(*parts[: i + 1])).is_symlink() for i in range(len(parts)))


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


def _version_link(model: str, version: str | None, up: str) -> str:
    return "–" if version is None else _link(up + _href("models", model, f"{version}.html"), version)


@functools.lru_cache(maxsize=65536)  # the same moments recur: a change is on its version's page and its model's
def _time(moment: datetime | None) -> str:
    return f'<time datetime="{moment.isoformat()}">{html_text(time_text(moment))}</time>' if moment else "–"


def _table(caption: str, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A table of cells that are already HTML (escaped by the caller)."""
    head = _head(tuple(headers))
    body = "".join(f"<tr><td>{'</td><td>'.join(row)}</td></tr>" for row in rows)
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


def _index(data: SiteData) -> str:
    rows = [
        [
            _link(_href("models", m.name, "index.html"), m.name),
            html_text(m.config.raw.get("description", "")),
            html_text(", ".join(m.config.raw.get("owners", ()))),
            *(_version_link(m.name, m.current(stage), "") for stage in ("prod", "staging", "dev")),
            str(len(m.versions)),
        ]
        for m in data.models
    ]
    headers = ["Model", "Description", "Owners", "prod", "staging", "dev", "Versions"]
    body = f"<p>Built {_time(data.built_at)} UTC from the registry's files.</p>" + _table("Models", headers, rows)
    return _page("Model registry", body, up="")


def _model_page(model: ModelSite) -> str:
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
    rows = []
    for entry in reversed(model.history):
        rollback = entry.from_ == "archived" and entry.to == "prod"
        move = f"{entry.from_ or 'registered'} → {entry.to}"
        rows.append(
            [
                _time(entry.at),
                _version_link(model.name, entry.version, "../../"),
                html_text(move) + (' <strong class="rollback">rollback</strong>' if rollback else ""),
                html_text(entry.by),
                html_text(f"#{entry.pr}" if entry.pr else "–"),
                html_text(", ".join(entry.approved_by) or "–"),
                html_text(entry.reason or entry.notes or ""),
            ]
        )
    headers = ["When (UTC)", "Version", "Change", "By", "PR", "Approved by", "Why"]
    return _table(f"Every change to {model.name}, newest first", headers, rows)


def _held(model: ModelSite) -> str:
    ends = [c.at for c in model.serving[1:]] + [None]
    rows = [
        [_time(change.at), _time(end), *(_version_link(model.name, change.holders[s], "../../") for s in HOLDER_STAGES)]
        for change, end in zip(model.serving, ends, strict=True)
    ]
    return _table("From each moment a holder changed until the next", ["From", "Until", *HOLDER_STAGES], rows)


def _versions(model: ModelSite) -> str:
    primary = model.config.primary_metric
    rows = [
        [
            _version_link(model.name, r.version, "../../"),
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
    metrics = sorted({m for r in model.versions for m in r.scores}, key=lambda m: (m != model.config.primary_metric, m))
    if not metrics:
        return "<p>No eval scores recorded.</p>"
    return "".join(
        _chart(model.name, metric, [(r.version, r.scores[metric]) for r in model.versions if metric in r.scores])
        for metric in metrics
    )


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
    rows = {r.version: i for i, r in enumerate(model.versions)}
    parts = []
    for i, record in enumerate(model.versions):
        y = ROW * i + ROW
        parts.append(_lineage_row(model.name, record, y, rows))
        parent = record.parent
        if parent and parent.startswith(f"{model.name}@") and parent.partition("@")[2] in rows:
            top = ROW * rows[parent.partition("@")[2]] + ROW
            bend = 160 - min(abs(y - top) / 2, 150)
            parts.append(f'<path class="edge" d="M160,{top - 4} C{bend},{top - 4} {bend},{y - 4} 160,{y - 4}"/>')
    height = ROW * len(model.versions) + ROW
    title = f"Lineage of {model.name}: each version joined to its parent, with its training dataset"
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


def _version_page(model: ModelSite, record: VersionRecord) -> str:
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
    return json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else str(value)


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
    return _table(caption, ["Name", "Value"], [[html_text(k), html_text(_plain(v))] for k, v in values.items()])


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


def _serving_page(data: SiteData) -> str:
    table = {
        m.name: [[c.at.isoformat(), *(c.holders[s] for s in HOLDER_STAGES)] for c in m.serving] for m in data.models
    }
    # JSON in a script element: "<" escaped, so no "</script>" or "<!--" in a value can end or change it.
    embedded = json.dumps({"stages": HOLDER_STAGES, "models": table}, separators=(",", ":")).replace("<", "\\u003c")
    rows = [[_link(_href("models", m, "index.html"), m), "", "", ""] for m in table]
    body = (
        SERVING_FORM
        + _table("Serving at the chosen moment", ["Model", *HOLDER_STAGES], rows)
        + f'<script type="application/json" id="serving-data">{embedded}</script>'
    )
    return _page("Serving on a date", body, up="", script="serving.js")


SERVING_FORM: Final = (
    "<p>Pick a moment (UTC): the table shows which version held dev, staging and prod of each model then, "
    "as recorded by the transitions. Each model's page lists every change.</p>"
    "<noscript><p>This view needs JavaScript; without it, each model page lists who held each stage when.</p>"
    "</noscript>"
    '<form id="when"><label for="date">Date</label> <input id="date" name="date" type="date" required> '
    '<label for="time">Time (UTC)</label> <input id="time" name="time" type="time" step="1" value="00:00:00"> '
    '<button type="submit">Show</button></form>'
    '<p id="answer-at" aria-live="polite"></p>'
)

# The "serving on a date" view: looks up, per model, the last change at or before the moment asked (the answers
# themselves were computed by Registry.holder when the site was built). Reads ?date=YYYY-MM-DD&time=HH:MM:SS.
SERVING_SCRIPT: Final = """\
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("serving-data").textContent);
  const form = document.getElementById("when");
  const rows = document.querySelectorAll("tbody tr");
  function cell(model, version) {
    if (version === null) { return document.createTextNode("\\u2013"); }
    const a = document.createElement("a");
    a.href = "models/" + encodeURIComponent(model) + "/" + encodeURIComponent(version) + ".html";
    a.textContent = version;
    return a;
  }
  function holdersAt(changes, moment) {
    let found = null;
    for (const change of changes) {
      if (Date.parse(change[0]) > moment) { break; }
      found = change;
    }
    return found ? found.slice(1) : data.stages.map(function () { return null; });
  }
  function show(date, time) {
    const moment = Date.parse(date + "T" + (time || "00:00:00") + "Z");
    if (Number.isNaN(moment)) { return; }
    document.getElementById("answer-at").textContent = "At " + new Date(moment).toISOString() + ":";
    Object.keys(data.models).forEach(function (model, i) {
      const cells = rows[i].querySelectorAll("td");
      holdersAt(data.models[model], moment).forEach(function (version, s) {
        cells[s + 1].replaceChildren(cell(model, version));
      });
    });
  }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    show(form.elements.date.value, form.elements.time.value);
  });
  const asked = new URLSearchParams(window.location.search);
  const date = asked.get("date") || new Date().toISOString().slice(0, 10);
  form.elements.date.value = date;
  if (asked.get("time")) { form.elements.time.value = asked.get("time"); }
  show(date, asked.get("time") || (asked.get("date") ? "00:00:00" : new Date().toISOString().slice(11, 19)));
})();
"""

STYLE: Final = """\
:root { color: #1b1b1b; background: #ffffff; font: 15px/1.45 system-ui, sans-serif; }
body { margin: 0 auto; max-width: 72rem; padding: 0 1rem 3rem; }
header nav { padding: .75rem 0; border-bottom: 1px solid #c8c8c8; }
a { color: #0b4f9c; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
caption { text-align: left; font-weight: 600; padding: .25rem 0; }
th, td { border: 1px solid #c8c8c8; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
code { font-size: .85em; word-break: break-all; }
time { white-space: nowrap; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
dt { font-weight: 600; }
.rollback { color: #9c1c1c; }
.chart svg { max-width: 100%; height: auto; border: 1px solid #c8c8c8; }
svg.lineage { max-width: 100%; height: auto; }
.chart polyline, .lineage .edge { stroke: #0b4f9c; stroke-width: 2; fill: none; }
.chart circle { fill: #0b4f9c; }
svg text { font-size: 12px; fill: #1b1b1b; }
.lineage a text { fill: #0b4f9c; text-decoration: underline; }
.lineage .dataset { fill: #4a4a4a; }
form { margin: 1rem 0; }
"""
