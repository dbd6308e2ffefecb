"""What the registry's queries answer: references, resolutions, history entries, lineage, diffs, status rows.

Plain frozen records and the pure functions that build them from version records;
:class:`regops.registry.Registry` reads the files and asks these for its answers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from regops.errors import RefError
from regops.kinds import STAGES, Stage, version_key
from regops.records import Interval, VersionRecord
from regops.summaries import ModelRow, Summary

__all__ = [
    "HistoryEntry",
    "LineageNode",
    "ModelStatus",
    "Ref",
    "Resolution",
    "ScoreDelta",
    "StageSummary",
    "VersionDiff",
    "current_span",
    "history_order",
    "parse_ref",
    "score_delta",
    "status_of",
    "status_row",
    "version_history",
]


# --- references --------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """``MODEL``, ``MODEL@VERSION`` or ``MODEL@STAGE``."""

    model: str
    version: str | None = None
    stage: Stage | None = None

    def __str__(self) -> str:
        tail = self.version or self.stage
        return f"{self.model}@{tail}" if tail else self.model


def parse_ref(text: str) -> Ref:
    model, sep, tail = text.partition("@")
    if not model or (sep and not tail):
        raise RefError(text, f"cannot read {text!r}: expected MODEL, MODEL@VERSION or MODEL@STAGE")
    if not tail:
        return Ref(model)
    if tail in STAGES:
        return Ref(model, stage=tail)
    return Ref(model, version=tail)


# --- answers -------------------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    model: str
    stage: Stage
    at: datetime | None
    version: str
    since: datetime
    until: datetime | None
    storage: dict[str, Any]
    path: str


@dataclass(frozen=True)
class HistoryEntry:
    model: str
    version: str
    at: datetime
    from_: Stage | None
    to: Stage
    by: str
    pr: int | None = None
    approved_by: tuple[str, ...] = ()
    notes: str | None = None
    reason: str | None = None
    evidence: tuple[dict[str, Any], ...] = ()
    kind: str | None = None  # register, promote, rollback, auto, archive or canary (queries.kind_of)


@dataclass(frozen=True)
class LineageNode:
    """One ancestor: a registered version, or an external base (``ref`` is hf://…)."""

    ref: str
    depth: int
    dataset: str | None = None
    dataset_hash: str | None = None
    eval_dataset: str | None = None
    external: bool = False
    missing: bool = False
    parent: str | None = None
    dataset_source: str | None = None  # where the training data lives: files, a DVC entry, a table snapshot, a URI
    eval_dataset_source: str | None = None  # where the eval set lives, likewise


@dataclass(frozen=True)
class ScoreDelta:
    metric: str
    a: float | None
    b: float | None
    delta: float | None
    goal: Literal["max", "min"] | None
    better: bool | None  # is b better than a? None: no goal known, or no change


@dataclass(frozen=True)
class VersionDiff:
    a: str
    b: str
    primary_metric: str
    scores: list[ScoreDelta]
    params_added: dict[str, Any]
    params_removed: dict[str, Any]
    params_changed: dict[str, tuple[Any, Any]]
    dataset: tuple[str, str]
    dataset_hash: tuple[str, str]
    eval_dataset: tuple[str | None, str | None]
    parent: tuple[str | None, str | None]
    comparable: bool = True  # both measured on the same eval set (records.comparable); else no score deltas


@dataclass(frozen=True)
class StageSummary:
    version: str
    score: float | None


@dataclass(frozen=True)
class ModelStatus:
    model: str
    primary_metric: str
    dev: StageSummary | None
    staging: StageSummary | None
    prod: StageSummary | None
    prod_since: datetime | None
    candidates: int
    versions: int


# --- building them ------------------------------------------------------------


def status_row(
    name: str,
    metric: str,
    held: Mapping[Stage, StageSummary],
    *,
    prod_since: datetime | None,
    candidates: int,
    versions: int,
) -> ModelStatus:
    """A model's status row from who held dev, staging and prod (each with its score), and since when prod."""
    return ModelStatus(
        model=name,
        primary_metric=metric,
        dev=held.get("dev"),
        staging=held.get("staging"),
        prod=held.get("prod"),
        prod_since=prod_since if "prod" in held else None,
        candidates=candidates,
        versions=versions,
    )


def version_history(record: VersionRecord) -> list[HistoryEntry]:
    """A version's registration and transitions, in the order its file records them."""
    model, version = record.model, record.version
    return [
        HistoryEntry(model, version, record.created_at, None, "candidate", record.created_by),
        *(
            HistoryEntry(model, version, t.at, t.from_, t.to, t.by, t.pr, t.approved_by, t.notes, t.reason, t.evidence)
            for t in record.steps
        ),
    ]


def history_order(entry: HistoryEntry) -> tuple[datetime, bool, tuple[Any, ...]]:
    """Oldest first; at one moment a version leaving a stage before the one taking its place, then SemVer order."""
    return (entry.at, entry.to != "archived", version_key(entry.version))


def status_of(name: str, summary: Summary) -> ModelStatus:
    row: ModelRow = summary.rows[0]

    def held(found: tuple[str, float | None, str] | None) -> StageSummary | None:
        return StageSummary(found[0], found[1]) if found else None

    return ModelStatus(
        model=name,
        primary_metric=summary.metric,
        dev=held(row.dev),
        staging=held(row.staging),
        prod=held(row.prod),
        prod_since=datetime.fromisoformat(row.prod[2]) if row.prod else None,
        candidates=row.candidates,
        versions=row.versions,
    )


def current_span(record: VersionRecord) -> Interval:
    start = record.steps[-1].at if record.steps else record.created_at
    return Interval(record.version, record.stage, start, None)


def score_delta(
    name: str, a: float | None, b: float | None, goal: Literal["max", "min"] | None, same_eval_set: bool = True
) -> ScoreDelta:
    if not same_eval_set or a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return ScoreDelta(name, a, b, None, goal, None)
    delta = b - a
    better = None if goal is None or delta == 0 else (delta > 0) == (goal == "max")
    return ScoreDelta(name, a, b, delta, goal, better)
