"""Per-model summaries, indexed by the files' stat data as git's index is: what whole-registry queries read.

A registry that keeps every version for years has 100,000 version files; ``regops status`` needs of each
model only who holds each stage, since when and with what score, and ``history`` only the transitions. A
:class:`SummaryIndex` keeps, per model folder, three signed entries in the parse cache's private folder
(:mod:`regops.cache`): its ``status`` record (:class:`ModelRow`), its ``moves`` (:class:`Move`, for ``history``)
and its ``spans`` (:class:`Span`, for ``status --at``), each in the form its query reads, stored with
a digest of the stat data of every file in the folder (name, size, mtime, ctime, inode) as it was *before* the
files were read, and, when git vouches for the files (:mod:`regops.freshness`), the folder's git key: its tree
at HEAD and the folder's own stat data. An entry is used only when the folder still has exactly those files
with exactly that stat data, or git still vouches for that tree and the folder's stat data is the same (no
``lstat`` per file); otherwise the model is read (through the content-keyed parse cache) and the entry rebuilt.

The racy case is git's: a file written in the same timestamp granule as the index entry can change again
without its stat data changing. So an entry is never written while a file's mtime or ctime is within
:data:`RACY_NS` of the moment the entry is made from: the model is read again next time, and the entry written
then (when the file is no longer racy). A lookup then compares git's key, or the stat data (one pass over the folder's
files). Entries of models whose files have problems are never written, so a query on them reads the files and
reports the problems as before. A corrupt, truncated, foreign or hand-edited entry fails its MAC or its shape
check and is rebuilt, never trusted.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from sys import intern
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

from regops.cache import MarshalCache
from regops.freshness import RACY_NS, Key, Stats
from regops.kinds import Stage, version_key
from regops.store import ParseCache

if TYPE_CHECKING:
    from regops.records import ModelEntry
    from regops.records import Step as StepRecord

__all__ = [
    "RACY_NS",
    "ModelRow",
    "Move",
    "Span",
    "Summary",
    "SummaryIndex",
    "VersionRow",
    "micros",
    "moves_of",
    "rows_of",
    "spans_of",
    "status_of",
]

# 3: racy entries are never written; 4: "spans", moves in history order; 5: "keys", a digest of the stat data and
# maybe a git tree key (regops.freshness)
_FORMAT: Final = "regops-summary-5"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


class VersionRow(NamedTuple):
    """What ``status`` needs of one version: its stage now, since when (ISO 8601), its primary metric's score."""

    version: str
    stage: Stage
    since: str
    score: float | None


Held = tuple[str, float | None, str]  # a stage's holder: version, primary score, since (ISO 8601)


class ModelRow(NamedTuple):
    """What ``status`` shows of a model, made when the model is read: who holds dev, staging and prod, how many
    candidates and versions. A warm ``status`` reads this one record per model, whatever the history's length."""

    dev: Held | None
    staging: Held | None
    prod: Held | None
    candidates: int
    versions: int


class Move(NamedTuple):
    """One stage transition of a version, or its registration (``kind`` "registered", ``source`` None): all that
    ``history`` shows of it, and the version's primary score (``status --at``; on its registration only)."""

    version: str
    source: Stage | None
    stage: Stage
    at: str  # ISO 8601
    by: str
    kind: str  # "registered" | "transition"
    pr: int | None = None
    approved_by: tuple[str, ...] = ()
    notes: str | None = None
    reason: str | None = None
    evidence: tuple[dict[str, Any], ...] = ()
    score: float | None = None
    at_us: int = 0  # ``at`` in microseconds since the epoch: what filters and sorts compare, no datetime built


Step = tuple[int, Stage, str]  # a transition as ``status --at`` reads it: when (µs since the epoch), to, when (ISO)


class Span(NamedTuple):
    """What ``status --at`` needs of one version: its primary score, when it was registered, and its steps (file
    order): its stage at any moment is the last step at or before it, "candidate" before the first."""

    version: str
    score: float | None
    created_us: int
    created: str  # ISO 8601
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Summary:
    """One model's summary: its primary metric, and its status record (one row) or its moves."""

    metric: str
    rows: list[Any]


def rows_of(entry: ModelEntry, metric: str) -> list[VersionRow]:
    """A loaded model's status rows, in SemVer order."""
    rows = []
    for record in entry.ordered:
        since = record.steps[-1].at if record.steps else record.created_at
        rows.append(VersionRow(record.version, record.stage, since.isoformat(), record.scores.get(metric)))
    return rows


def status_of(entry: ModelEntry, metric: str) -> ModelRow:
    """A loaded model's status record: the latest to enter each stage holds it (on a tie the later version)."""
    rows = rows_of(entry, metric)

    def holder(stage: Stage) -> Held | None:
        held = [r for r in rows if r.stage == stage]
        row = max(held, key=lambda r: (datetime.fromisoformat(r.since), version_key(r.version)), default=None)
        return (row.version, row.score, row.since) if row else None

    candidates = sum(1 for r in rows if r.stage == "candidate")
    return ModelRow(holder("dev"), holder("staging"), holder("prod"), candidates, len(rows))


def micros(moment: datetime) -> int:
    """A moment as whole microseconds since the epoch (exact; a naive moment is read as UTC)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return (aware - _EPOCH) // _MICROSECOND


def moves_of(entry: ModelEntry, metric: str) -> list[Move]:
    """A loaded model's registrations and transitions in ``history`` order: oldest first; at one moment a version
    leaving a stage before the one taking its place, then SemVer order, then each version's file order."""
    moves = []
    for record in entry.ordered:
        created, by = record.created_at, intern(record.created_by)
        score, at_us = record.scores.get(metric), micros(created)
        moves.append(
            Move(record.version, None, "candidate", created.isoformat(), by, "registered", score=score, at_us=at_us)
        )
        moves += [_move(record.version, t) for t in record.steps]
    keys = {version: version_key(version) for version in entry.versions}
    return sorted(moves, key=lambda m: (m.at_us, m.stage != "archived", keys[m.version]))


def spans_of(entry: ModelEntry, metric: str) -> list[Span]:
    """A loaded model's versions as ``status --at`` reads them, in SemVer order."""
    return [
        Span(
            record.version,
            record.scores.get(metric),
            micros(record.created_at),
            record.created_at.isoformat(),
            tuple((micros(t.at), cast("Stage", intern(t.to)), t.at.isoformat()) for t in record.steps),
        )
        for record in entry.ordered
    ]


def _move(version: str, t: StepRecord) -> Move:
    """A transition as ``history`` shows it; stages and logins as one string object each, so an entry stores each
    once (marshal refers back to an object it has written) and reading it makes one, not one per move."""
    source, to, by = cast("Stage", intern(t.from_)), cast("Stage", intern(t.to)), intern(t.by)
    said = (t.pr, t.approved_by, t.notes, t.reason, t.evidence)
    return Move(version, source, to, t.at.isoformat(), by, "transition", *said, at_us=micros(t.at))


_SHAPES: Final[dict[str, Any]] = {"status": ModelRow, "moves": Move, "spans": Span}


class SummaryIndex(MarshalCache):
    """Per model folder, its summaries keyed by its files' stat data (module docs)."""

    prefix = "summary-"

    def namespace(self) -> str:
        return f"{_FORMAT}-{ParseCache(None).namespace()}"

    def stats(self, folder: Path) -> Stats:
        """The stat data of the YAML files in ``folder`` (links left out, as the loader leaves them out)."""
        found: Stats = {}
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    if entry.name.endswith((".yaml", ".yml")) and not entry.is_symlink():
                        st = entry.stat(follow_symlinks=False)
                        found[entry.name] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
        except OSError:
            return {}
        return found

    def lookup(self, folder: Path, part: str, key: Stats | Key | None) -> Summary | None:
        """The ``part`` ("status", "moves" or "spans") of ``folder``'s entry, if made from the files it has now:
        ``key`` is their stat data, or their git key (:func:`regops.freshness.model_keys`)."""
        if not key:
            return None
        wanted = _stat_key(key) if isinstance(key, dict) else key
        entry = self.read(folder / f".{part}")
        made, keys, metric, rows = entry.get("made"), entry.get("keys"), entry.get("metric"), entry.get("rows")
        # No racy test here: :meth:`store` writes no entry with a racy file, and an entry is signed.
        if not isinstance(made, int) or not isinstance(keys, list) or wanted not in keys or not isinstance(rows, list):
            return None
        shape = _SHAPES.get(part)
        if shape is None or not all(isinstance(row, tuple) and len(row) == len(shape._fields) for row in rows):
            return None  # not the shape this regops writes
        return Summary(str(metric), list(map(partial(tuple.__new__, shape), rows)))

    def store(
        self, folder: Path, made: int, stats: Stats, entry: ModelEntry, metric: str, *, vouched: Key | None = None
    ) -> dict[str, Summary]:
        """Record ``folder``'s summaries, read from files whose stat data before reading was ``stats`` (and, under
        the git key ``vouched`` too, when :func:`regops.freshness.vouched` showed the bytes read were its tree's);
        not when a file is racy (written within :data:`RACY_NS` of ``made``): its stat data could stay while its
        content changes, so the model is read again next time, when the file is no longer racy."""
        parts = {
            "status": Summary(metric, [status_of(entry, metric)]),
            "moves": Summary(metric, moves_of(entry, metric)),
            "spans": Summary(metric, spans_of(entry, metric)),
        }
        if any(max(mtime, ctime) >= made - RACY_NS for _size, mtime, ctime, _ino in stats.values()):
            return parts
        for part, summary in parts.items():
            rows = [tuple(row) for row in summary.rows]
            keys = [_stat_key(stats), vouched] if vouched else [_stat_key(stats)]
            self.write(folder / f".{part}", {"made": made, "keys": keys, "metric": metric, "rows": rows})
        return parts


def _stat_key(stats: Stats) -> bytes:
    """The stat key as an entry records it: a digest of every file's stat data, so an entry stays small (and
    quick to read) however many versions the folder holds."""
    return hashlib.blake2b(marshal.dumps(sorted(stats.items())), digest_size=16).digest()


def now_ns() -> int:
    """The moment an entry is made from: taken before the files are looked at."""
    return time.time_ns()
