"""Questions asked of the whole registry, for audits: what held each stage at a moment, and what happened.

Everything here reads a loaded :class:`~regops.registry.Registry` through two of its readings — every
registration and transition of every version of a model (``Registry.history``) and every stage each
version held (``ModelEntry.intervals``) — so the same questions can later be answered from an index.

- :func:`history`: every registration and transition of the selected models, oldest first, filtered by
  who, bots, stage, kind and time (a :class:`HistoryQuery`).
- :func:`status_at`: who held dev, staging and prod of every model at a moment.
- :func:`stage_at` / :func:`versions_at`: a version's stage at a moment; a model's versions as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

from regops.errors import RegopsError
from regops.kinds import Stage, StepKind
from regops.records import ConfigRecord, VersionRecord
from regops.registry import (
    HOLDER_STAGES,
    HistoryEntry,
    ModelStatus,
    Registry,
    history_order,
    status_row,
    version_history,
)
from regops.timespec import as_utc

__all__ = [
    "HistoryQuery",
    "NotYetRegisteredError",
    "history",
    "kind_of",
    "stage_at",
    "status_at",
    "versions_at",
]


# The notes of the transition a canary's final verdict proposes (flows.canary: "canary " + the decision's summary).
CANARY_NOTES: Final = ("canary pass:", "canary fail:")


class NotYetRegisteredError(RegopsError):
    """A version asked about at a moment before it was registered."""

    def __init__(self, record: VersionRecord, moment: datetime) -> None:
        self.model, self.version, self.moment = record.model, record.version, moment
        super().__init__(
            f"{record.ref} did not exist at {moment.isoformat()}: it was registered at "
            f"{record.created_at.isoformat()}; run `regops show {record.model} --at {moment.isoformat()}` "
            "for the versions there were then"
        )


@dataclass(frozen=True)
class HistoryQuery:
    """Which entries :func:`history` keeps; every filter given must hold (an empty one keeps everything)."""

    models: tuple[str, ...] = ()  # default: every model
    by: str | None = None  # who made the step (login)
    bots: bool = False  # only steps made by bots (regops.yaml ``bots``, or a ``…[bot]`` login)
    stage: Stage | None = None  # steps into or out of this stage
    kinds: tuple[StepKind, ...] = ()
    since: datetime | None = None  # at or after
    until: datetime | None = None  # before


def kind_of(entry: HistoryEntry, config: ConfigRecord) -> StepKind:
    """What a history entry was: a registration, a promotion, a rollback (archived -> prod), an auto-promotion
    (a bot's step with an ``auto:`` reason), the step a canary's final verdict proposed out of staging (the notes
    ``regops canary check`` writes), or an archiving."""
    if entry.from_ is None:
        return "register"
    if entry.from_ == "archived" and entry.to == "prod":
        return "rollback"
    if config.is_bot(entry.by) and (entry.reason or "").startswith("auto:"):
        return "auto"
    if entry.from_ == "staging" and (entry.notes or "").startswith(CANARY_NOTES):
        return "canary"
    return "archive" if entry.to == "archived" else "promote"


def history(registry: Registry, query: HistoryQuery | None = None) -> list[HistoryEntry]:
    """Every registration and transition of every version of the selected models, oldest first, with its kind.

    Across models, entries at one moment come in model order; within a model as ``Registry.history`` orders them.
    """
    query = query or HistoryQuery()
    if not query.models:
        registry.load_all()
    config = registry.config
    keeps = _filter(query, config)
    found = [
        (name, replace(entry, kind=kind))
        for name in query.models or registry.model_names()
        for record in registry.versions(name)
        for entry in version_history(record)
        if keeps(entry) and _kind_kept(query, kind := kind_of(entry, config))
    ]
    found.sort(key=lambda f: (f[1].at, f[0], *history_order(f[1])[1:]))
    return [entry for _, entry in found]


def _filter(query: HistoryQuery, config: ConfigRecord) -> Callable[[HistoryEntry], bool]:
    """The query's filters but the kind, as one test (times converted once, not per entry)."""
    since = as_utc(query.since) if query.since else None
    until = as_utc(query.until) if query.until else None

    def keeps(entry: HistoryEntry) -> bool:
        return (
            (since is None or entry.at >= since)
            and (until is None or entry.at < until)
            and (query.by is None or entry.by == query.by)
            and (not query.bots or config.is_bot(entry.by))
            and (query.stage is None or query.stage in (entry.from_, entry.to))
        )

    return keeps


def _kind_kept(query: HistoryQuery, kind: StepKind) -> bool:
    return not query.kinds or kind in query.kinds


def _span_at(record: VersionRecord, moment: datetime) -> tuple[Stage, datetime] | None:
    """The stage ``record`` was in at ``moment`` and since when (None: not registered yet)."""
    if record.created_at > moment:
        return None
    stage: Stage = "candidate"
    start = record.created_at
    for step in record.steps:
        if step.at > moment:
            break
        stage, start = step.to, step.at
    return stage, start


def stage_at(record: VersionRecord, moment: datetime) -> Stage | None:
    """The stage ``record`` was in at ``moment`` (None: not registered yet); a step at ``moment`` has happened."""
    span = _span_at(record, as_utc(moment))
    return span[0] if span else None


def versions_at(registry: Registry, model: str, moment: datetime) -> list[tuple[VersionRecord, Stage]]:
    """A model's versions that existed at ``moment``, in SemVer order, each with the stage it was in then."""
    found = ((r, stage_at(r, moment)) for r in registry.versions(model))
    return [(r, stage) for r, stage in found if stage is not None]


def status_at(registry: Registry, moment: datetime) -> list[ModelStatus]:
    """One row per model that had a version at ``moment``: who held dev, staging and prod then, since when prod."""
    registry.load_all()
    rows = (_status_at(registry, name, as_utc(moment)) for name in registry.model_names())
    return [row for row in rows if row is not None]


def _status_at(registry: Registry, name: str, moment: datetime) -> ModelStatus | None:
    entry = registry.model_entry(name)
    spans = [(r, span) for r in entry.ordered if (span := _span_at(r, moment))]
    if not spans:
        return None
    # The latest to enter a stage holds it (on a tie the later version), as Registry.holder reads the intervals.
    held: dict[Stage, tuple[VersionRecord, datetime]] = {}
    for record, (stage, start) in spans:
        if stage in HOLDER_STAGES and (stage not in held or start >= held[stage][1]):
            held[stage] = (record, start)
    candidates = sum(1 for _, (stage, _) in spans if stage == "candidate")
    metric = registry.model(name).primary_metric
    return status_row(name, metric, held, candidates=candidates, versions=len(spans))
