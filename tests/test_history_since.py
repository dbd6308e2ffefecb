"""``history --since`` reads what was said of recent moves only: the ``moves`` entry keeps the notes and reasons
of a model's newest moves (:class:`regops.summaries.Said`), the older ones' are an entry of their own, tied to it by
a token. That entry missing, damaged or another build's is never trusted: the model is read again and rebuilt.

A generated registry whose models have more moves than the ``moves`` entry keeps the words of, in tmp_path, its
files aged past the racy window once; answers are checked against the version files themselves (no cache).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from regops import queries
from regops.registry import HistoryEntry, Registry
from regops.summaries import RACY_NS, SummaryIndex, micros, moves_of, now_ns, older_moves

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from generate import generate

SINCE = queries.HistoryQuery(since=queries.as_utc(queries.datetime.fromisoformat("2026-06-01T00:00:00Z")))


def settle(root: Path) -> None:
    """Wait until every file under ``root`` is out of the racy window (ctimes cannot be set back)."""
    newest = max(p.lstat().st_ctime_ns for p in root.rglob("*"))
    time.sleep(max(0, newest + RACY_NS - now_ns()) / 1e9 + 0.01)


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REGOPS_CACHE_DIR", str(tmp_path / "cache"))
    root = generate(tmp_path / "generated", 2, 90, seed=5)
    settle(root)
    return root


def from_files(root: Path) -> list[HistoryEntry]:
    """What the version files say, read through ``Registry.history`` with every cache off, oldest first."""
    os.environ["REGOPS_NO_CACHE"] = "1"
    try:
        opened = Registry.load(root)
        found = [
            replace(e, kind=queries.kind_of(e, opened.config)) for n in opened.model_names() for e in opened.history(n)
        ]
    finally:
        del os.environ["REGOPS_NO_CACHE"]
    return sorted(found, key=lambda e: e.at)


def kept(entries: list[HistoryEntry], query: queries.HistoryQuery) -> list[HistoryEntry]:
    """The entries ``query`` keeps (its --since), in their order: the files' answer to it, read once per test (the
    files do not change between the queries that share a reading)."""
    return [e for e in entries if query.since is None or e.at >= query.since]


def older_files(root: Path) -> dict[str, Path]:
    """Per model, the entry file of what was said of its older moves."""
    opened, index = Registry.load(root), SummaryIndex.from_environment()
    found = {}
    for name in opened.model_names():
        path = index.file(opened.root / "models" / name / ".said")
        if older_moves(len(moves_of(opened.model_entry(name)))) and path is not None:
            found[name] = path
    return found


def test_since_reads_only_what_was_said_of_recent_moves_and_answers_as_the_files_do(registry: Path) -> None:
    files = from_files(registry)
    assert queries.history(Registry.load(registry)) == files  # indexed
    older = older_files(registry)
    assert len(older) == 2 and all(path.is_file() for path in older.values())  # more moves than the entry keeps
    read = Registry.load(registry).summaries("moves", since=micros(SINCE.since))
    for name, summary in read.items():
        said = summary.rows.said
        assert 0 < said.split <= queries.bisect_left(summary.rows.at_us, micros(SINCE.since)), name
        assert said.older is None, name  # not read
    with pytest.raises(LookupError, match="older than what was read"):
        next(iter(read.values())).rows.said[0]
    assert queries.history(Registry.load(registry), SINCE) == kept(files, SINCE)
    everything = Registry.load(registry).summaries("moves", since=None)
    assert all(summary.rows.said.older is not None for summary in everything.values())
    early = queries.HistoryQuery(since=queries.as_utc(queries.datetime.fromisoformat("2023-01-01T00:00:00Z")))
    assert queries.history(Registry.load(registry), early) == kept(files, early)  # reads the older ones


def test_a_damaged_or_foreign_chunk_is_never_trusted(registry: Path) -> None:
    everything = from_files(registry)
    assert queries.history(Registry.load(registry)) == everything
    name, path = sorted(older_files(registry).items())[0]  # what was said of its moves before --since
    raw = path.read_bytes()
    for damaged in (raw[: len(raw) // 2], raw[:-1] + bytes([raw[-1] ^ 1]), b""):
        path.write_bytes(damaged)
        assert queries.history(Registry.load(registry), SINCE) == kept(everything, SINCE)
        assert path.read_bytes() == damaged  # not read, so not rebuilt
        assert queries.history(Registry.load(registry)) == everything
        assert path.read_bytes() != damaged  # read, found damaged, rebuilt
    # Another build's chunk, signed and whole: the model's files changed since (an old move's notes).
    edited = sorted((registry / "models" / name).glob("*.yaml"))
    step = next((p, line) for p in edited for line in p.read_text().splitlines() if _plain_step(line))
    step[0].write_text(step[0].read_text().replace(step[1], step[1].replace(", by: ", ", notes: rewritten, by: ")))
    settle(registry)
    changed = from_files(registry)
    assert changed != everything and any(e.notes == "rewritten" for e in changed)
    assert queries.history(Registry.load(registry)) == changed  # rebuilt, with a new token
    path.write_bytes(raw)  # the old build's chunk put back
    assert queries.history(Registry.load(registry)) == changed
    assert path.read_bytes() != raw  # not this build's: rebuilt


def _plain_step(line: str) -> bool:
    return line.startswith("  - {from:") and "notes:" not in line and ", by: " in line
