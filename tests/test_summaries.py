"""The per-model summary index (regops.summaries): `status` reads one record per model, and never a stale one."""

from __future__ import annotations

import os
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from regops import queries
from regops.errors import InvalidRegistryError
from regops.registry import Registry
from regops.summaries import RACY_NS, STATE_WIDTH, Moves, SummaryIndex, micros, move_of_code, now_ns

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from generate import generate


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("generated"), 3, 6, seed=2)


@pytest.fixture(scope="module")
def aged_copies(template: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Copies of the template made together and aged together: the racy window is waited out once per module
    (per worker), not once per test."""
    root = tmp_path_factory.mktemp("copies")
    copies = [Path(shutil.copytree(template, root / str(i))) for i in range(12)]
    aged(root)
    return copies


@pytest.fixture
def registry(aged_copies: list[Path], template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REGOPS_CACHE_DIR", str(tmp_path / "cache"))
    return aged_copies.pop() if aged_copies else Path(shutil.copytree(template, tmp_path / "registry"))


def status(registry: Path) -> list[object]:
    return list(Registry.load(registry).status())


def from_files(registry: Path, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What status says with no cache and no index at all: every file read."""
    with monkeypatch.context() as m:
        m.setenv("REGOPS_NO_CACHE", "1")
        return status(registry)


def listed(moves: Moves) -> list[tuple[str, str | None, str, str, str, int]]:
    """A model's moves column by column, row by row: version, from, to, at (as written), by, at (µs)."""
    return [
        (moves.versions[moves.version[i]], *move_of_code(moves.code[i])[:2], moves.said[i][0],
         moves.logins[moves.login[i]], moves.at_us[i])
        for i in range(len(moves))
    ]  # fmt: skip


def audits(registry: Path) -> tuple[list[object], ...]:
    """The whole history, and the status at its first, middle and last moment."""
    opened = Registry.load(registry)
    history = queries.history(opened)
    return history, *(queries.status_at(opened, history[i].at) for i in (0, len(history) // 2, -1))


def entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache").glob("summary-*.marshal"))


def aged(registry: Path) -> None:
    """Every file as if written long before the index (not racy): recent mtimes set back, and the ctimes (which
    that sets to now and nothing can set back) left to age past the racy window. Files already out of the window
    are left alone (setting their times again would make their ctimes new)."""
    old = now_ns() - 10 * RACY_NS
    for path in registry.rglob("*.yaml"):
        st = path.stat()
        if max(st.st_mtime_ns, st.st_ctime_ns) >= now_ns() - RACY_NS:
            os.utime(path, ns=(old, old))
    newest = max(path.stat().st_ctime_ns for path in registry.rglob("*.yaml"))
    time.sleep(max(0, newest + RACY_NS - now_ns()) / 1e9 + 0.01)


def promote_candidate(registry: Path) -> Path:
    """Hand-edit a candidate into an archived version; returns the file."""
    model = sorted((registry / "models").iterdir())[0]
    path = next(p for p in sorted(model.glob("*.yaml")) if "\nstage: candidate\n" in p.read_text())
    text = (
        path.read_text()
        .replace("\nstage: candidate\n", "\nstage: archived\n")
        .replace("transitions: []", "transitions:")
    )
    path.write_text(text.rstrip("\n") + "\n  - {from: candidate, to: archived, at: 2026-11-30T10:00:00Z, by: alice}\n")
    return path


def test_status_from_the_index_is_status_from_the_files(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    aged(registry)
    expected = from_files(registry, monkeypatch)
    assert status(registry) == expected  # cold: reads the files, writes the index
    assert len(entries(tmp_path)) == 3 * 3  # status, moves and spans, per model
    assert status(registry) == expected  # warm: from the index


def test_outside_git_each_stored_entry_is_read_once(registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no git key to match, a warm query matches each model's stored entry by its files' stat data, reading
    the entry once (it is read before git's answer, which here is none)."""
    aged(registry)
    expected = from_files(registry, monkeypatch)
    assert status(registry) == expected  # the index is warm
    read, real = [], SummaryIndex.read

    def counted(index: SummaryIndex, key: Path) -> dict[object, object]:
        read.append(key.name)
        return real(index, key)

    monkeypatch.setattr(SummaryIndex, "read", counted)
    assert status(registry) == expected
    assert read == [".status"] * len(list((registry / "models").iterdir()))


def test_an_edited_file_is_read_again(registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aged(registry)
    before = status(registry)
    promote_candidate(registry)
    after = status(registry)
    assert after != before
    assert after == from_files(registry, monkeypatch)
    assert after[0].candidates == before[0].candidates - 1  # type: ignore[attr-defined]


def test_a_file_written_in_the_index_s_own_second_is_not_trusted(registry: Path) -> None:
    """git's racy case: same stat data, new content, when the edit falls in the entry's timestamp granule."""
    registry_ = Registry.load(registry)
    folder = sorted((registry / "models").iterdir())[0]
    index = SummaryIndex.from_environment()
    stats = index.stats(folder)
    entry = registry_.model_entry(folder.name)
    newest = max(max(mtime, ctime) for _size, mtime, ctime, _ino in stats.values())
    index.store(folder, newest, stats, entry, "accuracy")
    assert index.lookup(folder, "status", stats) is None  # same stat data, but racy: re-read
    assert index.lookup(folder, "moves", stats) is None
    assert index.lookup(folder, "spans", stats) is None
    index.store(folder, newest + RACY_NS + 1, stats, entry, "accuracy")
    assert index.lookup(folder, "status", stats) is not None
    changed = {**stats, next(iter(stats)): (0, 0, 0, 0)}
    assert index.lookup(folder, "status", changed) is None


def test_an_edit_in_the_second_the_index_is_made_is_read_again(registry: Path, tmp_path: Path) -> None:
    """The whole path: status made while a file is racy writes no entry for that model, so an edit that keeps
    the file's stat data (size and times put back, as within one clock granule) is still seen."""
    aged(registry)
    path = promote_candidate(registry)  # written now: racy for the status below
    racy = path.stat()
    first = status(registry)
    assert len(entries(tmp_path)) == 3 * 2  # the other two models' entries; none for the racy one
    text = path.read_text()
    path.write_text(text.replace("by: alice}", "by: carol}"))  # same size
    os.utime(path, ns=(racy.st_atime_ns, racy.st_mtime_ns))
    assert [path.stat().st_size, path.stat().st_mtime_ns] == [racy.st_size, racy.st_mtime_ns]
    assert status(registry) == first  # the edit changes no holder, but was read: the entry now has it
    moves = listed(Registry.load(registry).summaries("moves")[path.parent.name].rows)
    assert any(by == "carol" and version == path.stem for version, _, _, _, by, _ in moves)
    assert not any(by == "alice" and v == path.stem and at.startswith("2026-11-30") for v, _, _, at, by, _ in moves)


def test_a_damaged_index_entry_is_ignored_and_rebuilt(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each damage in turn, on every entry (one registry: each round's rebuilt entries are the next one's prey,
    so the racy window is waited out twice, not twice per damage)."""
    aged(registry)
    status(registry)
    promote_candidate(registry)  # what a trusted stale entry would hide
    aged(registry)
    expected = from_files(registry, monkeypatch)
    with monkeypatch.context() as m:
        m.setenv("REGOPS_NO_CACHE", "1")
        expected_audits = audits(registry)
    status(registry)
    for damage in ["truncated", "flipped", "foreign", "planted", "garbage"]:
        files = entries(tmp_path)
        assert len(files) == 3 * 3, damage  # every entry was rebuilt by the round before
        for path in files:
            raw = path.read_bytes()
            damaged = {
                "truncated": raw[: len(raw) // 2],
                "flipped": raw[:-1] + bytes([raw[-1] ^ 1]),
                "foreign": files[(files.index(path) + 1) % len(files)].read_bytes(),  # another entry's, signed for it
                "planted": raw[:16] + b"\0" * 32 + raw[48:],  # a MAC nobody's key made
                "garbage": b"regops-cache-1\n\0" + os.urandom(64),
            }[damage]
            path.write_bytes(damaged)
        assert status(registry) == expected, damage
        assert status(registry) == expected, damage
        assert audits(registry) == expected_audits, damage  # the damaged moves and timelines were rebuilt too
        assert all(p.read_bytes()[:16] == b"regops-cache-1\n\0" for p in entries(tmp_path)), damage


def test_a_model_with_a_broken_file_is_reported_not_summarised(registry: Path, tmp_path: Path) -> None:
    aged(registry)
    status(registry)
    path = promote_candidate(registry)
    path.write_text(path.read_text().replace("stage: archived", "stage: nowhere"))
    with pytest.raises(InvalidRegistryError) as raised:
        status(registry)
    assert path.name in str(raised.value)
    with pytest.raises(InvalidRegistryError):
        status(registry)  # no entry was written for it meanwhile


def test_the_moves_summary_is_the_models_history(registry: Path) -> None:
    """What whole-registry history queries read: every registration and transition, as `history` lists them."""
    aged(registry)
    opened = Registry.load(registry)
    for _ in range(2):  # built, then from the index
        moves = Registry.load(registry).summaries("moves")
        for name, summary in moves.items():
            history = opened.history(name)
            expected = [(h.version, h.from_, h.to, h.at.isoformat(), h.by, micros(h.at)) for h in history]
            assert listed(summary.rows) == expected  # in its order
            said = [summary.rows.said[i][1:] for i in range(len(history))]
            assert said == [(h.pr, h.approved_by, h.notes, h.reason, h.evidence) for h in history]


def test_the_timeline_ends_in_the_status_now(registry: Path) -> None:
    """What `status --at` reads: a state after each moment something happened; the last is the status now (made
    apart, from each version's current stage), and nothing is there before the first registration."""
    aged(registry)
    opened = Registry.load(registry)
    for _ in range(2):  # built, then from the index
        timelines = Registry.load(registry).summaries("spans")
        assert sorted(timelines) == opened.model_names()
        for name, summary in timelines.items():
            timeline, now = summary.rows, opened.summaries("status")[name].rows[0]
            moments = {micros(e.at) for e in opened.history(name)}
            assert list(timeline.at_us) == sorted(moments)  # this generator's steps are in time order
            assert timeline.state(min(moments) - 1) is None
            *holders, since, candidates, versions = timeline.states[-STATE_WIDTH:]
            names = [timeline.versions[h] if h >= 0 else None for h in holders]
            assert names == [held[0] if held else None for held in (now.dev, now.staging, now.prod)]
            assert (candidates, versions) == (now.candidates, now.versions)
            assert timeline.since[since] == now.prod[2]


def test_micros_is_exact_and_reads_offsets() -> None:
    moment = datetime.fromisoformat("2026-11-30T12:00:00.000001+02:00")
    assert micros(moment) == micros(datetime.fromisoformat("2026-11-30T10:00:00.000001Z"))
    assert micros(moment) - micros(datetime.fromisoformat("2026-11-30T10:00:00Z")) == 1
    assert micros(datetime(2026, 11, 30, 10)) == micros(datetime.fromisoformat("2026-11-30T10:00:00Z"))


def test_who_counts_as_a_bot_is_read_from_regops_yaml_now_not_from_the_index(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The moves store logins, never whether they are bots: a login added to ``bots:`` counts at once for
    `history --bots` (and for the kinds), with the index entries left as they were."""
    aged(registry)
    query = queries.HistoryQuery(bots=True)
    before = queries.history(Registry.load(registry), query)
    humans = {e.by for e in queries.history(Registry.load(registry))} - {e.by for e in before}
    assert humans
    stored = {p: p.read_bytes() for p in entries(tmp_path)}
    config = registry / "regops.yaml"
    config.write_text(config.read_text().replace('bots: ["', f'bots: ["{min(humans)}", "'))
    after = queries.history(Registry.load(registry), query)
    assert {e.by for e in after} - {e.by for e in before} == {min(humans)}
    with monkeypatch.context() as m:
        m.setenv("REGOPS_NO_CACHE", "1")
        assert after == queries.history(Registry.load(registry), query)
    assert {p: p.read_bytes() for p in entries(tmp_path)} == stored  # answered from the same entries
