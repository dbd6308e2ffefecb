"""``history --since`` reads what was said of recent moves only: the ``moves`` entry keeps its newest chunk of what
was said (:class:`regops.summaries.Said`), each older chunk is an entry of its own, tied to it by a token. A chunk
that is missing, damaged or another build's is never trusted: the model is read again and its entries rebuilt.

A generated registry whose models have more moves than one chunk holds, in tmp_path, its files aged past the racy
window once; answers are checked against the version files themselves (no cache).
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
from regops.summaries import RACY_NS, SAID_CHUNK, SummaryIndex, micros, moves_of, now_ns, said_chunks

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


def from_files(root: Path, query: queries.HistoryQuery) -> list[HistoryEntry]:
    """What the version files say, read through ``Registry.history`` with every cache off."""
    os.environ["REGOPS_NO_CACHE"] = "1"
    try:
        opened = Registry.load(root)
        found = [
            replace(e, kind=queries.kind_of(e, opened.config)) for n in opened.model_names() for e in opened.history(n)
        ]
    finally:
        del os.environ["REGOPS_NO_CACHE"]
    kept = [e for e in found if query.since is None or e.at >= query.since]
    return sorted(kept, key=lambda e: e.at)


def chunk_files(root: Path) -> dict[tuple[str, int], Path]:
    """Each model's older chunks' entry files, by model and chunk number."""
    opened, index = Registry.load(root), SummaryIndex.from_environment()
    found = {}
    for name in opened.model_names():
        moves = len(moves_of(opened.model_entry(name)))
        for k in range(said_chunks(moves) - 1):
            found[name, k] = index.file(opened.root / "models" / name / f".said-{k}")
    return {key: path for key, path in found.items() if path is not None}


def test_since_reads_only_the_chunks_of_recent_moves_and_answers_as_the_files_do(registry: Path) -> None:
    assert queries.history(Registry.load(registry)) == from_files(registry, queries.HistoryQuery())  # indexed
    chunks = chunk_files(registry)
    assert len(chunks) >= 2 and all(path.is_file() for path in chunks.values())  # more moves than a chunk holds
    opened = Registry.load(registry)
    read = opened.summaries("moves", since=micros(SINCE.since))
    for name, summary in read.items():
        first = queries.bisect_left(summary.rows.at_us, micros(SINCE.since)) // SAID_CHUNK
        loaded = [chunk is not None for chunk in summary.rows.said.chunks]
        assert loaded == [k >= first or k == len(loaded) - 1 for k in range(len(loaded))], name
        assert False in loaded, name  # the old ones were not read
    with pytest.raises(LookupError, match="older than the chunks read"):
        next(iter(read.values())).rows.said[0]
    assert queries.history(Registry.load(registry), SINCE) == from_files(registry, SINCE)


def test_a_damaged_or_foreign_chunk_is_never_trusted(registry: Path) -> None:
    everything = from_files(registry, queries.HistoryQuery())
    assert queries.history(Registry.load(registry)) == everything
    chunks = chunk_files(registry)
    (name, _), path = sorted(chunks.items())[0]  # the oldest chunk of a model: before --since
    raw = path.read_bytes()
    for damaged in (raw[: len(raw) // 2], raw[:-1] + bytes([raw[-1] ^ 1]), b""):
        path.write_bytes(damaged)
        assert queries.history(Registry.load(registry), SINCE) == from_files(registry, SINCE)
        assert path.read_bytes() == damaged  # not read, so not rebuilt
        assert queries.history(Registry.load(registry)) == everything
        assert path.read_bytes() != damaged  # read, found damaged, rebuilt
    # Another build's chunk, signed and whole: the model's files changed since (an old move's notes).
    edited = sorted((registry / "models" / name).glob("*.yaml"))
    step = next((p, line) for p in edited for line in p.read_text().splitlines() if _plain_step(line))
    step[0].write_text(step[0].read_text().replace(step[1], step[1].replace(", by: ", ", notes: rewritten, by: ")))
    settle(registry)
    changed = from_files(registry, queries.HistoryQuery())
    assert changed != everything and any(e.notes == "rewritten" for e in changed)
    assert queries.history(Registry.load(registry)) == changed  # rebuilt, with a new token
    path.write_bytes(raw)  # the old build's chunk put back
    assert queries.history(Registry.load(registry)) == changed
    assert path.read_bytes() != raw  # not this build's: rebuilt


def _plain_step(line: str) -> bool:
    return line.startswith("  - {from:") and "notes:" not in line and ", by: " in line
