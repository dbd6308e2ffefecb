"""Questions asked of the whole registry, for audits: what held each stage at a moment, and what happened.

The whole-registry questions (:func:`history`, :func:`status_at`) read the per-model ``moves`` and ``spans``
summaries (``Registry.summaries``: every registration and transition of every version as columns, and a
timeline of who held each stage, kept per model folder and keyed by its files' stat data), so a warm query
opens one record per model, not one file per version; the questions about one version or one model read its files.

- :func:`history`: every registration and transition of the selected models, oldest first, filtered by
  who, bots, stage, kind and time (a :class:`HistoryQuery`).
- :func:`status_at`: who held dev, staging and prod of every model at a moment.
- :func:`stage_at` / :func:`versions_at`: a version's stage at a moment; a model's versions as they were.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, partial
from operator import itemgetter
from typing import Any, Final, TypedDict

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
from regops.summaries import MOVE_CODES, Moves, Summary, Timeline, micros, move_of_code, said_auto, said_canary
from regops.timespec import as_utc

__all__ = [
    "History",
    "HistoryFilters",
    "HistoryQuery",
    "NotYetRegisteredError",
    "history",
    "history_moves",
    "kind_of",
    "stage_at",
    "status_at",
    "versions_at",
]


class HistoryFilters(TypedDict, total=False):
    """What :func:`regops.api.history` keeps, every filter given holding: steps of ``models`` (besides ``model``),
    made by ``by``, by bots, into or out of ``stage``, of ``kinds``, from ``since`` until ``until``."""

    models: Sequence[str]
    by: str | None
    bots: bool
    stage: Stage | None
    kinds: Sequence[StepKind]
    since: str | datetime | None
    until: str | datetime | None


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
    auto, canary = said_auto(entry.reason), said_canary(entry.notes)
    return _kind(entry.from_, entry.to, bot=auto and config.is_bot(entry.by), auto=auto, canary=canary)


def _kind(source: Stage | None, to: Stage, *, bot: bool, auto: bool, canary: bool) -> StepKind:
    if source is None:
        return "register"
    if source == "archived" and to == "prod":
        return "rollback"
    if bot and auto:
        return "auto"
    if source == "staging" and canary:
        return "canary"
    return "archive" if to == "archived" else "promote"


@dataclass(frozen=True)
class History:
    """What a history query kept, oldest first: per move, its model, its model's :class:`Moves`, its position there
    and its kind. Read from the columns as they are: the text table renders from them (``report.history_text``);
    :meth:`entries` makes a :class:`HistoryEntry` per move for the other renderings and the library."""

    kept: list[tuple[str, Moves, int, StepKind]]
    rendered: Any = None  # what history_moves' ``render`` made of these moves

    def entries(self, start: int = 0, stop: int | None = None) -> list[HistoryEntry]:
        """A :class:`HistoryEntry` per kept move (of ``kept[start:stop]``: a part at a time of a long history)."""
        return [_entry(name, moves, i, kind) for name, moves, i, kind in self.kept[start:stop]]


def history(registry: Registry, query: HistoryQuery | None = None) -> list[HistoryEntry]:
    """Every registration and transition of every version of the selected models, oldest first, with its kind
    (:func:`history_moves`, as entries)."""
    return history_moves(registry, query).entries()


def history_moves(
    registry: Registry, query: HistoryQuery | None = None, render: Callable[[History], Any] | None = None
) -> History:
    """The moves :func:`history` answers with, as :class:`History`; with ``render``, what it made of them in
    ``History.rendered``, made while git looks at the model folders (``Registry.summarised``: the stored moves, kept
    when git then vouches for them all; else the moves and their rendering made again from what was rebuilt).

    Read from the per-model ``moves`` columns (:class:`regops.summaries.Moves`), never the version files once
    indexed; nothing is made for a move the query drops. Across models, moves at one moment come in model order;
    within a model as ``Registry.history`` orders them (the order its moves are summarised in).
    """
    query = query or HistoryQuery()
    since = micros(query.since) if query.since else None
    moves_of = partial(_history_of, query, cache(registry.config.is_bot), render)
    return registry.summarised("moves", moves_of, query.models, since)


def _history_of(
    query: HistoryQuery,
    is_bot: Callable[[str], bool],
    render: Callable[[History], Any] | None,
    summaries: dict[str, Summary],
) -> History:
    """:func:`history_moves` of these models' moves."""
    history = History(_kept(query, is_bot, summaries))  # the moves as found, sorted, are gone before rendering
    return History(history.kept, render(history)) if render is not None else history


def _kept(
    query: HistoryQuery, is_bot: Callable[[str], bool], summaries: dict[str, Summary]
) -> list[tuple[str, Moves, int, StepKind]]:
    kinds = _kinds(query)
    codes = bytes(kinds[2 * code] is not None or kinds[2 * code + 1] is not None for code in range(MOVE_CODES))
    found: list[tuple[int, str, Moves, int, StepKind]] = []
    for name, summary in sorted(summaries.items()):
        moves: Moves = summary.rows
        table = [_login_kinds(query, kinds, login, is_bot(login)) for login in moves.logins]
        code, login, at_us = moves.code, moves.login, moves.at_us
        candidates = _candidates(moves, query, codes)
        found += [(at_us[i], name, moves, i, k) for i in candidates if (k := table[login[i]][code[i]]) is not None]
    found.sort(key=itemgetter(0))  # stable: at one moment, in model order, then in the model's order
    return [(name, moves, i, kind) for _, name, moves, i, kind in found]


def _login_kinds(query: HistoryQuery, kinds: list[StepKind | None], login: str, bot: bool) -> list[StepKind | None]:
    """Per move code, the kind of a move by ``login`` when the query keeps it (its ``--by``, ``--bots``, stage and
    kinds): one lookup per move."""
    if query.by not in (None, login) or (query.bots and not bot):
        return _DROPPED
    return kinds[bot::2]


_DROPPED: Final[list[StepKind | None]] = [None] * MOVE_CODES


def _kinds(query: HistoryQuery) -> list[StepKind | None]:
    """Per move code and bot flag (``code * 2 + bot``), the move's kind when the query's stage and kinds keep it."""
    table: list[StepKind | None] = []
    for code in range(MOVE_CODES):
        source, to, auto, canary = move_of_code(code)
        for bot in (False, True):
            kind = _kind(source, to, bot=bot, auto=auto, canary=canary)
            kept = (query.stage is None or query.stage in (source, to)) and (not query.kinds or kind in query.kinds)
            table.append(kind if kept else None)
    return table


def _candidates(moves: Moves, query: HistoryQuery, codes: bytes) -> Iterable[int]:
    """The positions of a model's moves (oldest first) within ``--since``/``--until`` (found by bisection) whose
    code the query may keep (``codes``: 1 per code it may keep): a scan of one byte per move, in C, where most
    codes are dropped."""
    start = bisect_left(moves.at_us, micros(query.since)) if query.since else 0
    end = bisect_left(moves.at_us, micros(query.until)) if query.until else len(moves)
    if all(codes):
        return range(start, end)
    mask = moves.code.translate(codes.ljust(256, b"\0"))
    return (found.start() for found in _ONE.finditer(mask, start, end))


_ONE: Final = re.compile(b"\x01")


def _entry(name: str, moves: Moves, i: int, kind: StepKind) -> HistoryEntry:
    """A kept move as ``version_history`` makes it from the file, with its kind."""
    source, to, _, _ = move_of_code(moves.code[i])
    at, pr, approved_by, notes, reason, evidence = moves.said[i]
    version, by = moves.versions[moves.version[i]], moves.logins[moves.login[i]]
    said = (pr, approved_by, notes, reason, evidence)
    return HistoryEntry(name, version, datetime.fromisoformat(at), source, to, by, *said, kind=kind)


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
    Read from the per-model timelines (:class:`regops.summaries.Timeline`): one bisection per model."""
    point = micros(as_utc(moment))
    rows = (_status_at(name, summary, point) for name, summary in registry.summaries("spans").items())
    return [row for row in rows if row is not None]


def _status_at(name: str, summary: Summary, point: int) -> ModelStatus | None:
    """A model's status at ``point`` (µs since the epoch); None when none of its versions existed yet."""
    timeline: Timeline = summary.rows
    state = timeline.state(point)
    if state is None:
        return None
    *holders, since, candidates, versions = state
    held = {
        s: StageSummary(timeline.versions[h], timeline.scores[h])
        for s, h in zip(HOLDER_STAGES, holders, strict=True)
        if h >= 0
    }
    when = datetime.fromisoformat(timeline.since[since]) if since >= 0 else None
    return status_row(name, summary.metric, held, prod_since=when, candidates=candidates, versions=versions)
