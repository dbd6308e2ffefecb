"""Per-model summaries, indexed by the files' stat data as git's index is: what whole-registry queries read.

A registry that keeps every version for years has 100,000 version files; ``regops status`` needs of each
model only who holds each stage, since when and with what score, and ``history`` only the transitions. A
:class:`SummaryIndex` keeps, per model folder, three signed entries in the parse cache's private folder
(:mod:`regops.cache`): its ``status`` record (:class:`ModelRow`), its ``moves`` (:class:`Moves`, for ``history``)
and its ``spans`` (:class:`Timeline`, for ``status --at``), each in the form its query reads (columns: plain
arrays and bytes that marshal copies whole, texts decoded only for what a query keeps), stored with
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
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from regops.cache import MarshalCache
from regops.freshness import RACY_NS, Key, Stats
from regops.kinds import STAGES, Stage, version_key
from regops.store import ParseCache

if TYPE_CHECKING:
    from regops.records import ModelEntry, VersionRecord

__all__ = [
    "CANARY_NOTES",
    "MOVE_CODES",
    "RACY_NS",
    "SAID_RECENT",
    "STATE_WIDTH",
    "ModelRow",
    "Moves",
    "Packed",
    "Said",
    "Summary",
    "SummaryIndex",
    "Timeline",
    "VersionRow",
    "filed_under",
    "micros",
    "move_code",
    "move_of_code",
    "moves_of",
    "older_moves",
    "rows_of",
    "said_auto",
    "said_canary",
    "stat_key",
    "status_of",
    "timeline_of",
    "wanted_key",
]

Keys = dict[str, Key | None]  # per model, git's key (regops.freshness.ask)
Stamps = dict[str, dict[Any, Any]]  # per model, what SummaryIndex.vouches reads of its stored entry (stamp)
Found = dict[str, "Summary | None"]  # per model, its summary; None: to read from its files and store
Looked = tuple[Found, dict[str, Stats], Keys]  # SummaryIndex.vouched_for's answer

# 3: racy entries are never written; 4: "spans", moves in history order; 5: "keys", a digest of the stat data and
# maybe a git tree key (regops.freshness); 6: moves and timelines as columns; 7: what was said, in chunks (Said)
_FORMAT: Final = "regops-summary-7"
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


# The words that make a step an auto-promotion (a bot's step with this reason) or a canary's verdict (its notes, as
# ``regops canary check`` writes them): stored as flags per move, so a query never decodes the texts to tell.
AUTO_REASON: Final = "auto:"
CANARY_NOTES: Final = ("canary pass:", "canary fail:")
_SOURCES: Final[tuple[Stage | None, ...]] = (None, *STAGES)


def said_auto(reason: str | None) -> bool:
    return (reason or "").startswith(AUTO_REASON)


def said_canary(notes: str | None) -> bool:
    return (notes or "").startswith(CANARY_NOTES)


def move_code(source: Stage | None, to: Stage, *, auto: bool, canary: bool) -> int:
    """A move's from, to and the two flags its kind depends on, as one byte (:func:`move_of_code` reads it)."""
    return ((_SOURCES.index(source) * len(STAGES) + STAGES.index(to)) * 2 + auto) * 2 + canary


def _unpacked(code: int) -> tuple[Stage | None, Stage, bool, bool]:
    pair, canary = divmod(code, 2)
    pair, auto = divmod(pair, 2)
    source, to = divmod(pair, len(STAGES))
    return _SOURCES[source], STAGES[to], bool(auto), bool(canary)


MOVE_CODES: Final = len(_SOURCES) * len(STAGES) * 4
_UNPACKED: Final = [_unpacked(code) for code in range(MOVE_CODES)]


def move_of_code(code: int) -> tuple[Stage | None, Stage, bool, bool]:
    """From, to, an ``auto:`` reason, canary notes: what :func:`move_code` packed."""
    return _UNPACKED[code]


class Packed:
    """Values marshalled one after another into one bytes object, each decoded only when asked for."""

    __slots__ = ("blob", "ends")

    def __init__(self, blob: bytes, ends: array[int]) -> None:
        self.blob, self.ends = blob, ends

    @classmethod
    def of(cls, values: Iterable[Any]) -> Packed:
        parts = [marshal.dumps(value) for value in values]
        return cls(b"".join(parts), array("I", accumulate(map(len, parts))))

    def __getitem__(self, i: int) -> Any:
        ends = self.ends  # a slice of bytes (a small copy) is made faster than a memoryview's
        return marshal.loads(self.blob[ends[i - 1] if i else 0 : ends[i]])

    def __len__(self) -> int:
        return len(self.ends)


# The moves whose notes and reasons the ``moves`` entry keeps (:class:`Said`): the older ones' are an entry of their
# own, so a ``--since`` of recent moves reads ~1/7 of what was said at 100,000 versions (27 of the 36 MB of moves).
SAID_RECENT: Final = 256


class Said:
    """What was said of each move (:class:`Moves`), in two :class:`Packed` parts: of the :data:`SAID_RECENT` newest
    moves (from ``split`` on), and of the older ones, None when a query did not read them (its ``--since`` is
    later than all of them)."""

    __slots__ = ("newest", "older", "split")

    def __init__(self, older: Packed | None, newest: Packed, split: int) -> None:
        self.older, self.newest, self.split = older, newest, split

    @classmethod
    def of(cls, values: list[Any]) -> Said:
        split = older_moves(len(values))
        return cls(Packed.of(values[:split]), Packed.of(values[split:]), split)

    def __getitem__(self, i: int) -> Any:
        # read here, not by the part's __getitem__: one call per move the table shows
        part = self.newest if i >= self.split else self.older
        if part is None:
            raise LookupError(f"move {i} is older than what was read of the moves")
        i -= self.split if i >= self.split else 0
        ends = part.ends
        return marshal.loads(part.blob[ends[i - 1] if i else 0 : ends[i]])


def older_moves(moves: int) -> int:
    """How many of ``moves`` moves are older than the :data:`SAID_RECENT` newest (:class:`Said`)."""
    return max(0, moves - SAID_RECENT)


@dataclass(frozen=True)
class Moves:
    """A model's registrations and transitions in ``history`` order, as columns: when (µs since the epoch),
    which version and login (indices into ``versions`` and ``logins``), from/to/flags (:func:`move_code`, one
    byte each), and what was said (``at`` as written, pr, approved_by, notes, reason, evidence: :class:`Said`,
    decoded only for a move a query keeps). A query filters on the columns; it builds nothing per move it drops."""

    versions: list[str]
    logins: list[str]
    at_us: array[int]
    version: array[int]
    login: array[int]
    code: bytes
    said: Said

    def __len__(self) -> int:
        return len(self.at_us)


@dataclass(frozen=True)
class Timeline:
    """What ``status --at`` reads of a model: after each moment something changed (``at_us``, ascending), who held
    dev, staging and prod (indices into ``versions``/``scores``, -1: nobody), since when prod (index into
    ``since``: its step's ``at`` as written), how many candidates and versions there were. One bisection per model
    answers any moment."""

    versions: Packed  # of str
    scores: Packed  # of float | None
    since: Packed  # of str
    at_us: array[int]
    states: array[int]  # STATE_WIDTH per moment

    def state(self, point: int) -> tuple[int, ...] | None:
        """The state after the last change at or before ``point``; None before the first version was registered."""
        i = bisect_right(self.at_us, point)
        return tuple(self.states[(i - 1) * STATE_WIDTH : i * STATE_WIDTH]) if i else None


STATE_WIDTH: Final = 6  # dev, staging, prod, prod since, candidates, versions


@dataclass(frozen=True)
class Summary:
    """One model's summary: its primary metric, and its ``status`` record (one row), its :class:`Moves` or its
    :class:`Timeline`."""

    metric: str
    rows: Any


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


def moves_of(entry: ModelEntry) -> Moves:
    """A loaded model's registrations and transitions in ``history`` order: oldest first; at one moment a version
    leaving a stage before the one taking its place, then SemVer order, then each version's file order."""
    found: list[tuple[tuple[int, bool, int], int, str, Stage | None, Stage, tuple[Any, ...]]] = []
    ordered = entry.ordered
    for position, record in enumerate(ordered):
        created = record.created_at
        said: tuple[Any, ...] = (created.isoformat(), None, (), None, None, ())
        found.append(((micros(created), True, position), position, record.created_by, None, "candidate", said))
        for t in record.steps:
            said = (t.at.isoformat(), t.pr, tuple(t.approved_by), t.notes, t.reason, tuple(t.evidence))
            key = (micros(t.at), t.to != "archived", position)
            found.append((key, position, t.by, t.from_, t.to, said))
    found.sort(key=itemgetter(0))  # stable: each version's file order stays
    logins = list(dict.fromkeys(f[2] for f in found))
    number = {login: i for i, login in enumerate(logins)}
    return Moves(
        [r.version for r in ordered],
        logins,
        array("q", (f[0][0] for f in found)),
        array("I", (f[1] for f in found)),
        array("I", (number[f[2]] for f in found)),
        bytes(move_code(f[3], f[4], auto=said_auto(f[5][4]), canary=said_canary(f[5][3])) for f in found),
        Said.of([f[5] for f in found]),
    )


def timeline_of(entry: ModelEntry, metric: str) -> Timeline:
    """A loaded model's :class:`Timeline`: each version's stage at a moment is that of the last of its steps (file
    order) before the first one after the moment, "candidate" before its first; the latest to enter a stage holds
    it (on a tie the later version)."""
    ordered = entry.ordered
    changes: dict[int, list[int]] = {}
    for position, record in enumerate(ordered):
        created = micros(record.created_at)
        for moment in {created, *(top for top in _tops(record) if top > created)}:
            changes.setdefault(moment, []).append(position)
    members: dict[Stage, dict[int, tuple[int, int, str]]] = {stage: {} for stage in STAGES}
    where: dict[int, Stage] = {}
    since: dict[str, int] = {}
    states: list[int] = []
    for moment in sorted(changes):
        for position in changes[moment]:
            if position in where:
                del members[where[position]][position]
            stage, start, text = _stage_then(ordered[position], moment)
            where[position], members[stage][position] = stage, (start, position, text)
        states += _snapshot(members, since, len(where))
    return Timeline(
        Packed.of(r.version for r in ordered),
        Packed.of(r.scores.get(metric) for r in ordered),
        Packed.of(since),
        array("q", sorted(changes)),
        array("i", states),
    )


def _tops(record: VersionRecord) -> list[int]:
    """The running maximum of a version's steps' moments (file order): a step counts once every step before it
    has happened, so its stage holds from this moment on."""
    return list(accumulate((micros(t.at) for t in record.steps), max))


def _stage_then(record: VersionRecord, moment: int) -> tuple[Stage, int, str]:
    """A registered version's stage at ``moment``, since when (µs) and that step's ``at`` as written."""
    steps = record.steps
    done = bisect_right(_tops(record), moment)
    if not done:
        return "candidate", micros(record.created_at), record.created_at.isoformat()
    step = steps[done - 1]
    return step.to, micros(step.at), step.at.isoformat()


def _snapshot(members: dict[Stage, dict[int, tuple[int, int, str]]], since: dict[str, int], versions: int) -> list[int]:
    """One :class:`Timeline` state: each holder stage's latest to enter it (on a tie the later version)."""
    held = [max(members[stage].values(), default=None) for stage in ("dev", "staging", "prod")]
    prod = held[2]
    when = since.setdefault(prod[2], len(since)) if prod else -1
    return [*(h[1] if h else -1 for h in held), when, len(members["candidate"]), versions]


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
        entry = self.entry(folder, part) if key else {}
        return self.decoded(entry, part) if self.vouches(entry, key) else None

    def entry(self, folder: Path, part: str, since: int | None = None) -> dict[Any, Any]:
        """The ``part`` of ``folder``'s entry as stored (its MAC checked), for :meth:`vouches`; {} when none.
        Of ``moves``, what was said of the moves at or after ``since`` (µs since the epoch; every move without)."""
        stored = self.read(folder / f".{part}")
        return self._said(folder, stored, since) if part == "moves" and stored else stored

    def _said(self, folder: Path, stored: dict[Any, Any], since: int | None) -> dict[Any, Any]:
        """The ``moves`` entry with what was said of the older moves (:class:`Said`) when a move at or after ``since``
        is among them (always without ``since``); {} when that part is missing, damaged or another build's (its
        token is not the entry's): the model is then read and its entries rebuilt, never trusted."""
        try:
            rows = stored["rows"]
            token, newest = rows["said"]["token"], rows["said"]["newest"]
            at_us = _column("q", rows["at_us"])
        except (KeyError, TypeError, ValueError):
            return {}
        split = older_moves(len(at_us))
        if split and (since is None or bisect_left(at_us, since) < split):
            older = self.read(folder / ".said")
            if older.get("token") != token:
                return {}
            return {**stored, "rows": {**rows, "said": (older.get("said"), newest)}}
        return {**stored, "rows": {**rows, "said": (None, newest)}}

    @staticmethod
    def vouches(entry: dict[Any, Any], key: Stats | Key | None) -> bool:
        """Whether :meth:`entry` was made from the files whose key is ``key`` (:meth:`lookup`)."""
        wanted = wanted_key(key)
        made, keys = entry.get("made"), entry.get("keys")
        # No racy test here: :meth:`store` writes no entry with a racy file, and an entry is signed.
        return wanted is not None and isinstance(made, int) and isinstance(keys, list) and wanted in keys

    def vouched_for(self, folders: dict[str, Path], stamps: Stamps, early: Found, keys: Keys) -> Looked:
        """Per folder, ``early``'s summary if its entry (``stamps``) is filed under git's key or its stat data."""
        found: Found = {}
        stats: dict[str, Stats] = {}
        for name, folder in folders.items():
            key: Stats | Key | None = keys.get(name)
            if not self.vouches(stamps[name], key):
                key = stats[name] = self.stats(folder)
            found[name] = early[name] if self.vouches(stamps[name], key) else None
            if found[name] is None and name not in stats:
                stats[name] = self.stats(folder)
        return found, stats, keys

    @staticmethod
    def stamp(entry: dict[Any, Any]) -> dict[Any, Any]:
        """What :meth:`vouches` reads of an entry (not its rows: a query keeps what :meth:`decoded` made of them)."""
        return {"made": entry.get("made"), "keys": entry.get("keys")}

    @staticmethod
    def decoded(entry: dict[Any, Any], part: str) -> Summary | None:
        """:meth:`entry`'s ``part`` as its query reads it, whatever files it was made from (:meth:`vouches` checks
        that); None when it is not the shape this regops writes."""
        if part not in _DECODE:
            return None
        try:
            decoded = _DECODE[part](entry.get("rows"))
        except (TypeError, ValueError, KeyError, IndexError):
            return None  # not the shape this regops writes
        return None if decoded is None else Summary(str(entry.get("metric")), decoded)

    def store(
        self, folder: Path, made: int, stats: Stats, entry: ModelEntry, metric: str, *, vouched: Key | None = None
    ) -> dict[str, Summary]:
        """Record ``folder``'s summaries, read from files whose stat data before reading was ``stats`` (and, under
        the git key ``vouched`` too, when :func:`regops.freshness.vouched` showed the bytes read were its tree's);
        not when a file is racy (written within :data:`RACY_NS` of ``made``): its stat data could stay while its
        content changes, so the model is read again next time, when the file is no longer racy."""
        parts = {
            "status": Summary(metric, [status_of(entry, metric)]),
            "moves": Summary(metric, moves_of(entry)),
            "spans": Summary(metric, timeline_of(entry, metric)),
        }
        keys = filed_under(stats, made, vouched)
        if keys is None:
            return parts
        for part, summary in parts.items():
            rows = _ENCODE[part](summary.rows)
            if part == "moves":
                rows["said"] = self._store_said(folder, summary.rows.said)
            self.write(folder / f".{part}", {"made": made, "keys": keys, "metric": metric, "rows": rows})
        return parts

    def _store_said(self, folder: Path, said: Said) -> dict[str, Any]:
        """What was said of the older moves written in an entry of its own (when there are any), with a token no
        other build has; for the ``moves`` entry, the newest moves' and that token (:meth:`_said` reads them)."""
        token = os.urandom(16)
        if said.older is not None and said.split:
            self.write(folder / ".said", {"token": token, "said": (said.older.blob, said.older.ends.tobytes())})
        return {"token": token, "newest": (said.newest.blob, said.newest.ends.tobytes())}


def stat_key(stats: Stats) -> bytes:
    """The stat key as an entry records it: a digest of every file's stat data, so an entry stays small (and
    quick to read) however many versions the folder holds."""
    return hashlib.blake2b(marshal.dumps(sorted(stats.items())), digest_size=16).digest()


def filed_under(stats: Stats, made: int, vouched: Key | None) -> list[bytes | Key] | None:
    """The keys an entry made from files whose stat data before reading was ``stats`` is filed under: their stat
    key, and git's key when :func:`regops.freshness.vouched` gave one; None while a file is racy (written within
    :data:`RACY_NS` of ``made``: its stat data could stay while its content changes, so no entry is written)."""
    if any(max(mtime, ctime) >= made - RACY_NS for _size, mtime, ctime, _ino in stats.values()):
        return None
    return [stat_key(stats), vouched] if vouched else [stat_key(stats)]


def wanted_key(key: Stats | Key | None) -> bytes | Key | None:
    """What an entry's keys (:func:`filed_under`) must hold to answer for files whose key is ``key``: the stat
    key of their stat data, or git's key as it is; None for no key."""
    if not key:
        return None
    return stat_key(key) if isinstance(key, dict) else key


def _status_rows(rows: Any) -> list[ModelRow] | None:
    fields = len(ModelRow._fields)
    if not isinstance(rows, list) or not all(isinstance(row, tuple) and len(row) == fields for row in rows):
        return None
    return [ModelRow(*row) for row in rows]


def _column(kind: str, raw: Any, length: int | None = None) -> array[int]:
    """An array of ``kind`` from its bytes; ValueError when it is not ``length`` long. (Its indices are not
    checked: an entry is signed, and its format named in the namespace.)"""
    if not isinstance(raw, bytes):
        raise TypeError("a column is bytes")
    column = array(kind)
    column.frombytes(raw)
    if length is not None and len(column) != length:
        raise ValueError("a column does not fit its table")
    return column


def _packed(raw: Any, count: int | None = None) -> Packed:
    blob, ends = raw
    packed = Packed(blob, _column("I", ends, count))
    if not isinstance(blob, bytes) or (packed.ends and packed.ends[-1] != len(blob)):
        raise ValueError("packed values do not fit their bytes")
    return packed


def _strings(raw: Any) -> list[str]:
    if not isinstance(raw, list):
        raise TypeError("a table is a list of strings")
    return raw


def _decode_moves(raw: Any) -> Moves:
    versions, logins = _strings(raw["versions"]), _strings(raw["logins"])
    at_us = _column("q", raw["at_us"])
    n = len(at_us)
    code = raw["code"]
    if not isinstance(code, bytes) or len(code) != n:
        raise ValueError("one move code per move")
    version, login = _column("I", raw["version"], n), _column("I", raw["login"], n)
    return Moves(versions, logins, at_us, version, login, code, _said_of(raw["said"], n))


def _said_of(raw: Any, moves: int) -> Said:
    """What :meth:`SummaryIndex._said` read (the older moves' None when not read), each part checked to fit."""
    older, newest = raw
    split = older_moves(moves)
    return Said(None if older is None else _packed(older, split), _packed(newest, moves - split), split)


def _encode_moves(moves: Moves) -> dict[str, Any]:
    columns = (moves.at_us, moves.version, moves.login)
    return {
        "versions": moves.versions,
        "logins": moves.logins,
        **{name: c.tobytes() for name, c in zip(("at_us", "version", "login"), columns, strict=True)},
        "code": moves.code,
    }


def _decode_timeline(raw: Any) -> Timeline:
    at_us = _column("q", raw["at_us"])
    states = _column("i", raw["states"], len(at_us) * STATE_WIDTH)
    versions = _packed(raw["versions"])
    scores = _packed(raw["scores"])
    if len(scores) != len(versions):
        raise ValueError("one score per version")
    return Timeline(versions, scores, _packed(raw["since"]), at_us, states)


def _encode_timeline(timeline: Timeline) -> dict[str, Any]:
    packed = {name: getattr(timeline, name) for name in ("versions", "scores", "since")}
    return {
        **{name: (p.blob, p.ends.tobytes()) for name, p in packed.items()},
        "at_us": timeline.at_us.tobytes(),
        "states": timeline.states.tobytes(),
    }


_DECODE: Final[dict[str, Callable[[Any], Any]]] = {
    "status": _status_rows,
    "moves": _decode_moves,
    "spans": _decode_timeline,
}
_ENCODE: Final[dict[str, Callable[[Any], Any]]] = {
    "status": lambda rows: [tuple(row) for row in rows],
    "moves": _encode_moves,
    "spans": _encode_timeline,
}


def now_ns() -> int:
    """The moment an entry is made from: taken before the files are looked at."""
    return time.time_ns()
