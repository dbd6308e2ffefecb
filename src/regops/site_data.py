"""What the registry website shows, gathered from the registry model by model: :func:`site_data`.

Everything comes through the registry's own queries (``history``, ``holder`` — the stage-at-time rule ``resolve --at``
uses —, ``lineage``); :mod:`regops.site_pages` renders it and :mod:`regops.site` writes the pages.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import operator
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from regops.kinds import Stage
from regops.records import ModelRecord, VersionRecord
from regops.registry import HOLDER_STAGES, MODEL_FILE, HistoryEntry, Interval, LineageNode, Registry

__all__ = ["ANCESTRY", "ModelSite", "ServingChange", "SiteData", "site_data", "version_files"]

# A version page lists this many of its lineage, nearest first (itself included); each ancestor's page goes on.
ANCESTRY: Final = 6


@dataclass(frozen=True)
class ServingChange:
    """From ``at`` on (until the next change), these versions held dev, staging and prod."""

    at: datetime
    holders: dict[Stage, str | None]


@dataclass(frozen=True)
class ModelSite:
    """One model's part of the site, read from its folder when first asked (the registry keeps a folder it read
    until :meth:`let_go`). The process that renders the model's pages reads it, and lets go of it and of what was
    gathered from it once they are written: a process holds about one model's versions at a time (at 100,000
    versions, every model's held at once took 1.66 GB)."""

    registry: Registry
    name: str

    @property
    def config(self) -> ModelRecord:
        return self.registry.model(self.name)

    @property
    def versions(self) -> list[VersionRecord]:
        """In SemVer order."""
        return self.registry.versions(self.name)

    @functools.cached_property
    def holders(self) -> dict[Stage, str | None]:
        """Now, as `regops status` says."""
        return {stage: _version(self.registry.holder(self.name, stage)) for stage in HOLDER_STAGES}

    def current(self, stage: Stage) -> str | None:
        return self.holders[stage]

    @functools.cached_property
    def serving(self) -> list[ServingChange]:
        return _serving(self.registry, self.name)

    @functools.cached_property
    def history(self) -> list[HistoryEntry]:
        return self.registry.history(self.name)

    @functools.cached_property
    def lineage(self) -> dict[str, list[LineageNode]]:
        """Version -> the version and its nearest ancestors."""
        return _lineages(self.registry, self.versions)

    def let_go(self) -> None:
        """Drop what was gathered of the model, and every model folder the registry read (:meth:`Registry.forget`):
        a later question reads them again."""
        for kept in _GATHERED:
            self.__dict__.pop(kept, None)
        self.registry.forget()


_GATHERED: Final = ("holders", "serving", "history", "lineage")  # ModelSite's cached properties


@dataclass(frozen=True)
class SiteData:
    models: list[ModelSite]
    built_at: datetime


def site_data(registry: Registry, *, now: datetime | None = None) -> SiteData:
    """Everything the site shows, for every model: the one place its data comes from. Nothing is read yet: each
    model's folder is read by the process that renders its pages (:class:`ModelSite`)."""
    models = [ModelSite(registry, name) for name in registry.model_names()]
    return SiteData(models, now or datetime.now(UTC))


def version_files(model: ModelSite) -> int:
    """How many version files the model's folder has (nothing read): how large the site is, before any of it is."""
    try:
        with os.scandir(model.registry.root / "models" / model.name) as found:
            return sum(1 for e in found if e.name.endswith((".yaml", ".yml")) and e.name != MODEL_FILE)
    except OSError:  # not written yet (a registry filled on demand): counted as none
        return 0


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
    """Who held each stage from every moment a holder changed: each stage's holder at every moment one of its
    intervals starts or ends (between them the answer cannot change), found in one pass (:func:`_holders`)."""
    intervals = registry.model_entry(name).intervals_by_stage
    asked = sorted(
        (t, i, version) for i, stage in enumerate(HOLDER_STAGES) for t, version in _holders(intervals.get(stage, []))
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


def _holders(intervals: list[Interval]) -> list[tuple[datetime, str | None]]:
    """At each moment one of one stage's ``intervals`` (sorted by start) starts or ends, oldest first, the version
    ``Registry.holder(at=…)`` answers: the last of them, in their order, that covers the moment. The covering ones
    are kept in a heap by position, each added when it starts and dropped when it has ended and is on top (once
    ended it covers no later moment): one pass, not one search of every interval per moment."""
    covering: list[tuple[int, Interval]] = []  # (-position, interval): the last one first
    answers: list[tuple[datetime, str | None]] = []
    started = 0
    for moment in sorted({t for i in intervals for t in (i.start, i.end) if t is not None}):
        while started < len(intervals) and intervals[started].start <= moment:
            heapq.heappush(covering, (-started, intervals[started]))
            started += 1
        while covering and not covering[0][1].covers(moment):
            heapq.heappop(covering)
        answers.append((moment, covering[0][1].version if covering else None))
    return answers


def _version(span: Interval | None) -> str | None:
    return span.version if span is not None else None
