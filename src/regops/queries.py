"""Questions asked of the whole registry, for audits: what held each stage at a moment, and what happened.

The whole-registry questions (:func:`history`, :func:`status_at`) read the per-model ``moves`` and ``spans``
summaries (``Registry.summaries``: every registration and transition of every version, kept per model folder
and keyed by its files' stat data), so a warm query opens one record per model, not one file per version;
the questions about one version or one model read its files.

- :func:`history`: every registration and transition of the selected models, oldest first, filtered by
  who, bots, stage, kind and time (a :class:`HistoryQuery`).
- :func:`status_at`: who held dev, staging and prod of every model at a moment.
- :func:`stage_at` / :func:`versions_at`: a version's stage at a moment; a model's versions as they were.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from itertools import islice
from operator import attrgetter
from typing import Final

from regops.errors import RegopsError
from regops.kinds import Stage, StepKind
from regops.records import ConfigRecord, VersionRecord
from regops.registry import (
    HOLDER_STAGES,
    HistoryEntry,
    ModelStatus,
    Registry,
    StageSummary,
    status_row,
)
from regops.summaries import Move, Span, Summary, micros
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
    return _kind(entry.from_, entry.to, entry.by, entry.reason, entry.notes, config=config)


def _kind(
    source: Stage | None, to: Stage, by: str, reason: str | None, notes: str | None, *, config: ConfigRecord
) -> StepKind:
    if source is None:
        return "register"
    if source == "archived" and to == "prod":
        return "rollback"
    if config.is_bot(by) and (reason or "").startswith("auto:"):
        return "auto"
    if source == "staging" and (notes or "").startswith(CANARY_NOTES):
        return "canary"
    return "archive" if to == "archived" else "promote"


def history(registry: Registry, query: HistoryQuery | None = None) -> list[HistoryEntry]:
    """Every registration and transition of every version of the selected models, oldest first, with its kind.

    Read from the per-model ``moves`` summaries (:mod:`regops.summaries`), never the version files once indexed;
    an entry is made only for a move the query keeps. Across models, entries at one moment come in model order;
    within a model as ``Registry.history`` orders them (the order its moves are summarised in).
    """
    query = query or HistoryQuery()
    entry_of = _selector(query, registry.config)
    found = [
        (move.at_us, name, position, entry)
        for name, summary in registry.summaries("moves", query.models).items()
        for position, move in _between(summary.rows, query)
        if (entry := entry_of(name, move)) is not None
    ]
    found.sort(key=lambda f: f[:3])
    return [f[3] for f in found]


def _between(moves: list[Move], query: HistoryQuery) -> Iterable[tuple[int, Move]]:
    """A model's moves (oldest first) within ``--since``/``--until``, with their positions: found by bisection,
    so a query about the last month never looks at the years before it."""
    at_us = attrgetter("at_us")
    start = bisect_left(moves, micros(query.since), key=at_us) if query.since else 0
    end = bisect_left(moves, micros(query.until), key=at_us) if query.until else len(moves)
    return zip(range(start, end), islice(moves, start, end), strict=True)


def _selector(query: HistoryQuery, config: ConfigRecord) -> Callable[[str, Move], HistoryEntry | None]:
    """The query as one test of a model's summarised move within its time range (:func:`_between`): its history
    entry (as ``version_history`` makes it from the file, with its kind) when every other filter keeps it, else
    None; a datetime is made only for a move that is kept."""
    is_bot = cache(config.is_bot)  # a handful of logins, asked about once each

    def entry_of(model: str, m: Move) -> HistoryEntry | None:
        if not (
            (query.by is None or m.by == query.by)
            and (not query.bots or is_bot(m.by))
            and (query.stage is None or query.stage in (m.source, m.stage))
        ):
            return None
        kind = _kind(m.source, m.stage, m.by, m.reason, m.notes, config=config)
        if query.kinds and kind not in query.kinds:
            return None
        said = (m.pr, m.approved_by, m.notes, m.reason, m.evidence)
        return HistoryEntry(model, m.version, datetime.fromisoformat(m.at), m.source, m.stage, m.by, *said, kind=kind)

    return entry_of


def _span(
    created: datetime, steps: Iterable[tuple[datetime, Stage]], moment: datetime
) -> tuple[Stage, datetime] | None:
    """The stage a version registered at ``created`` with these steps (file order) was in at ``moment``, and since
    when (None: not registered yet)."""
    if created > moment:
        return None
    stage: Stage = "candidate"
    start = created
    for at, to in steps:
        if at > moment:
            break
        stage, start = to, at
    return stage, start


def stage_at(record: VersionRecord, moment: datetime) -> Stage | None:
    """The stage ``record`` was in at ``moment`` (None: not registered yet); a step at ``moment`` has happened."""
    span = _span(record.created_at, ((step.at, step.to) for step in record.steps), as_utc(moment))
    return span[0] if span else None


def versions_at(registry: Registry, model: str, moment: datetime) -> list[tuple[VersionRecord, Stage]]:
    """A model's versions that existed at ``moment``, in SemVer order, each with the stage it was in then."""
    found = ((r, stage_at(r, moment)) for r in registry.versions(model))
    return [(r, stage) for r, stage in found if stage is not None]


def status_at(registry: Registry, moment: datetime) -> list[ModelStatus]:
    """One row per model that had a version at ``moment``: who held dev, staging and prod then, since when prod.
    Read from the per-model ``spans`` summaries, never the version files once indexed."""
    point = micros(as_utc(moment))
    rows = (_status_at(name, summary, point) for name, summary in registry.summaries("spans").items())
    return [row for row in rows if row is not None]


def _status_at(name: str, summary: Summary, point: int) -> ModelStatus | None:
    """A model's status at ``point`` (µs since the epoch); None when none of its versions existed yet. The latest
    to enter a stage holds it (on a tie the later version), as Registry.holder reads the intervals."""
    held: dict[Stage, tuple[Span, int, str]] = {}
    candidates = versions = 0
    for span in summary.rows:
        found = _stage_then(span, point)
        if found is None:
            continue
        versions += 1
        stage, start, since = found
        candidates += stage == "candidate"
        if stage in HOLDER_STAGES and (stage not in held or start >= held[stage][1]):
            held[stage] = (span, start, since)
    if not versions:
        return None
    holders = {s: (StageSummary(h.version, h.score), datetime.fromisoformat(at)) for s, (h, _, at) in held.items()}
    return status_row(name, summary.metric, holders, candidates=candidates, versions=versions)


def _stage_then(span: Span, point: int) -> tuple[Stage, int, str] | None:
    """A version's stage at ``point`` and since when (µs, ISO); None before it was registered. As :func:`_span`."""
    if span.created_us > point:
        return None
    stage: Stage = "candidate"
    start, since = span.created_us, span.created
    for at_us, to, at in span.steps:
        if at_us > point:
            break
        stage, start, since = to, at_us, at
    return stage, start, since
