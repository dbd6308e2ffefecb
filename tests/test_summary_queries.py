"""Whole-registry audits read the per-model ``moves`` summaries: the same answers as the version files give.

The reference answers here come from the files through the per-model readings (``Registry.history``, the stage
intervals ``Registry.holder`` reads, ``queries.versions_at``), on tests/data/registry after edits: an auto-promotion
with its evidence, a hand-added transition with a pull request, approvers and notes, and the index warm before
each edit.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regops import queries, report
from regops.answers import history_order, version_history
from regops.cli import main
from regops.kinds import STAGES, version_key
from regops.records import ModelEntry, VersionRecord
from regops.registry import HOLDER_STAGES, HistoryEntry, ModelStatus, Registry, StageSummary
from regops.summaries import (
    RACY_NS,
    Moves,
    SummaryIndex,
    Timeline,
    micros,
    move_of_code,
    now_ns,
    said_auto,
    said_canary,
)
from tests.conftest import DATA, REPO, Tree, isolated_build
from tests.test_audit import better_candidate
from tests.test_summaries import listed


def aged(tree: Tree) -> None:
    """Every file as if written long before the index (not racy), so a warm query trusts the index."""
    old = now_ns() - 10 * RACY_NS
    for path in tree.root.rglob("*.yaml"):
        os.utime(path, ns=(old, old))


def from_files_history(opened: Registry) -> dict[str, list[HistoryEntry]]:
    return {
        name: [replace(e, kind=queries.kind_of(e, opened.config)) for e in opened.history(name)]
        for name in opened.model_names()
    }


def from_files_status(opened: Registry, moment: datetime) -> list[ModelStatus]:
    rows = []
    for name in opened.model_names():
        there = queries.versions_at(opened, name, moment)
        if not there:
            continue
        metric = opened.model(name).primary_metric
        held, starts = {}, {}
        for stage in HOLDER_STAGES:
            span = opened.holder(name, stage, at=moment)
            if span is not None:
                held[stage] = StageSummary(span.version, opened.version(name, span.version).scores.get(metric))
                starts[stage] = span.start
        candidates = sum(1 for _, stage in there if stage == "candidate")
        prod_since = starts.get("prod")
        rows.append(
            queries.status_row(name, metric, held, prod_since=prod_since, candidates=candidates, versions=len(there))
        )
    return rows


def moments(opened: Registry) -> list[datetime]:
    """Every moment something happened, a second before and after it, and long before and after everything."""
    ats = {e.at for name in opened.model_names() for e in opened.history(name)}
    around = {at + timedelta(seconds=d) for at in ats for d in (-1, 0, 1)}
    return sorted(around | {min(ats) - timedelta(days=365), max(ats) + timedelta(days=365)})


def edited(tree: Tree) -> None:
    """An auto-promotion with evidence (a bot's step), then a hand-added transition with a PR, approvers, notes."""
    better_candidate(tree)
    assert main(["auto-promote", "--by", "github-actions[bot]", "--registry", str(tree.root)]) == 0
    path = "models/intent/1.0.0.yaml"
    text = tree.read(path)
    assert "stage: prod\n" in text
    tree.write(
        path,
        text.replace("stage: prod\n", "stage: archived\n").rstrip("\n")
        + "\n  - {from: prod, to: archived, at: 2026-07-01T10:00:00Z, by: carol, pr: 41, approved_by: [dave],"
        " notes: retired}\n",
    )


def test_summary_fed_answers_equal_the_file_fed_ones_after_edits(tree: Tree) -> None:
    aged(tree)
    assert queries.history(Registry.load(tree.root))  # the index is warm before the edits
    edited(tree)
    aged(tree)  # the edited files' stat data changed (size, inode): their models are read again

    expected: dict[datetime, list[ModelStatus]] = {}
    for _ in range(2):  # built from the files, then from the index
        opened = Registry.load(tree.root)
        everything = queries.history(opened)
        assert opened._models == {}  # every answer came from the summaries: no model was kept loaded
        if not expected:  # the files' answers, read once: the files do not change from here on
            files = Registry.load(tree.root)
            reference = from_files_history(files)
            expected = {moment: from_files_status(files, moment) for moment in moments(files)}
        assert {name: [e for e in everything if e.model == name] for name in reference} == reference
        assert any(e.evidence and e.kind == "auto" for e in everything)
        assert any(e.pr == 41 and e.approved_by == ("dave",) and e.notes == "retired" for e in everything)
        table = report.history_text(queries.history_moves(Registry.load(tree.root)))
        assert table == _entries_table(everything, one_model=False)
        for moment, status in expected.items():
            assert queries.status_at(Registry.load(tree.root), moment) == status, moment


@pytest.fixture(scope="module")
def edited_copy(tmp_path_factory: pytest.TempPathFactory, git_template: Path) -> Path:
    """tests/data/registry and its schemas, aged then :func:`edited`, made once for the filter tests (each test
    copies it, as ``tree`` copies tests/data/registry)."""
    base = tmp_path_factory.mktemp("edited")
    with isolated_build(tmp_path_factory.mktemp("edited-home"), git_template):
        shutil.copytree(DATA / "registry", base / "registry")
        shutil.copytree(REPO / "schemas", base / "schemas")
        aged(Tree(base))
        edited(Tree(base))
    return base


@pytest.mark.parametrize(
    "query",
    [
        queries.HistoryQuery(bots=True),
        queries.HistoryQuery(kinds=("rollback",)),
        queries.HistoryQuery(kinds=("auto", "archive")),
        queries.HistoryQuery(by="carol", stage="prod"),
        queries.HistoryQuery(by="github-actions[bot]", bots=True, kinds=("auto", "promote")),
        queries.HistoryQuery(bots=True, stage="dev", kinds=("auto", "archive")),
        queries.HistoryQuery(models=("intent", "sentiment"), since=datetime.fromisoformat("2026-03-01T10:00:00Z")),
        queries.HistoryQuery(until=datetime.fromisoformat("2026-04-12T00:00:00Z")),
    ],
)
def test_every_filter_keeps_what_the_files_say_it_keeps(
    edited_copy: Path, tmp_path: Path, query: queries.HistoryQuery
) -> None:
    shutil.copytree(edited_copy, tmp_path, dirs_exist_ok=True)
    tree = Tree(tmp_path)
    aged(tree)
    reference = from_files_history(Registry.load(tree.root))
    everything = [e for name in sorted(reference) for e in reference[name]]
    whole = queries.history(Registry.load(tree.root))
    assert whole == sorted(everything, key=lambda e: (e.at, e.model, *history_order(e)[1:]))
    kept = queries.history(Registry.load(tree.root), query)
    assert kept  # each query keeps something on this registry
    assert kept == _kept(query, whole, Registry.load(tree.root).config.is_bot)


def _kept(
    query: queries.HistoryQuery, entries: list[HistoryEntry], is_bot: Callable[[str], bool]
) -> list[HistoryEntry]:
    """The query's filters applied by hand, one by one, to the file-fed entries."""
    return [
        e
        for e in entries
        if (not query.models or e.model in query.models)
        and (query.by is None or e.by == query.by)
        and (not query.bots or is_bot(e.by))
        and (query.stage is None or query.stage in (e.from_, e.to))
        and (not query.kinds or e.kind in query.kinds)
        and (query.since is None or e.at >= query.since)
        and (query.until is None or e.at < query.until)
    ]


def test_status_reads_one_ready_made_record_per_model(tree: Tree) -> None:
    aged(tree)
    expected = Registry.load(tree.root).status()  # built from the files
    for _ in range(2):  # then from the index
        summaries = Registry.load(tree.root).summaries("status")
        files = {name: len(list((tree.root / "models" / name).glob("*.yaml"))) - 1 for name in summaries}
        assert {name: len(s.rows) for name, s in summaries.items()} == dict.fromkeys(files, 1)
        assert {name: s.rows[0].versions for name, s in summaries.items()} == files
        assert Registry.load(tree.root).status() == expected
    sentiment = Registry.load(tree.root).summaries("status")["sentiment"].rows[0]
    assert (sentiment.prod, sentiment.staging[0], sentiment.dev[0]) == (
        ("1.2.0", 0.93, "2026-04-01T10:00:00+00:00"),
        "1.3.0",
        "1.4.0-rc.1",
    )


def test_a_time_with_an_offset_is_the_instant_it_names(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    """Summaries compare times as integers: a step written at +02:00 is kept by --since and --at at its instant
    (10:00Z), not at its wall-clock digits (12:00), is given with the offset its file has, and is shown in the
    text table's WHEN (UTC) column at its UTC minute."""
    aged(tree)
    queries.history(Registry.load(tree.root))  # the index is warm before the edit
    path = "models/sentiment/1.4.0-rc.2.yaml"
    step = "  - {from: candidate, to: dev, at: '2026-11-30T12:00:00+02:00', by: carol}\n"
    tree.write(
        path, tree.read(path).replace("stage: candidate\ntransitions: []\n", "stage: dev\ntransitions:\n" + step)
    )
    aged(tree)
    instant = datetime.fromisoformat("2026-11-30T10:00:00Z")
    for _ in range(2):  # built from the files, then from the index
        since = queries.history(Registry.load(tree.root), queries.HistoryQuery(since=instant))
        assert [(e.version, e.at.isoformat(), e.kind) for e in since] == [
            ("1.4.0-rc.2", "2026-11-30T12:00:00+02:00", "promote")
        ]
        assert not queries.history(Registry.load(tree.root), queries.HistoryQuery(since=instant + timedelta(seconds=1)))
        for moment in (instant - timedelta(seconds=1), instant):
            fed = queries.status_at(Registry.load(tree.root), moment)
            assert fed == from_files_status(Registry.load(tree.root), moment)
        sentiment = next(r for r in queries.status_at(Registry.load(tree.root), instant) if r.model == "sentiment")
        assert sentiment.dev is not None and sentiment.dev.version == "1.4.0-rc.2"
        assert main(["history", "--since", "2026-11-30T10:00:00Z", "--registry", str(tree.root)]) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[1].split()[:4] == ["2026-11-30", "10:00", "sentiment@1.4.0-rc.2", "candidate"]


LOGINS = ("alice", "carol", "training-bot[bot]", "github-actions[bot]")
SAID = (None, "auto: better", "canary pass: held", "canary fail: worse", "fixes")
OFFSETS = ("Z", "+02:00", "-05:30")
# Each strategy built once: one made at each draw is built and validated again each time (half of an example's making).
_COUNT, _STEPS, _MINUTE, _SCORE = st.integers(1, 6), st.integers(0, 4), st.integers(0, 9), st.floats(0, 1)
_OFFSET, _STAGE, _LOGIN, _SAID = (st.sampled_from(values) for values in (OFFSETS, STAGES, LOGINS, SAID))


@st.composite
def histories(draw: st.DrawFn) -> ModelEntry:
    """A model of random versions, each with random steps: any from/to, by humans or bots, reasons and notes that
    make auto and canary kinds, moments with offsets, ties, and steps out of time order (what an unchecked file
    may hold: the summaries must read it as the files' readers do)."""
    versions = {}
    for number in range(draw(_COUNT)):

        def moment() -> str:
            return f"2026-01-01T00:{draw(_MINUTE):02d}:00{draw(_OFFSET)}"

        steps = [
            {"from": draw(_STAGE), "to": draw(_STAGE), "at": moment(), "by": draw(_LOGIN), "reason": draw(_SAID),
             "notes": draw(_SAID)}
            for _ in range(draw(_STEPS))
        ]  # fmt: skip
        version = f"1.{number}.0"
        raw = {
            "model": "m",
            "version": version,
            "created_at": moment(),
            "created_by": draw(_LOGIN),
            "stage": steps[-1]["to"] if steps else "candidate",
            "evals": {"scores": {"accuracy": draw(_SCORE)}},
            "transitions": steps,
        }
        versions[version] = VersionRecord(raw, Path(f"{version}.yaml"))
    return ModelEntry("m", Path("m"), None, versions, [])


def _stage_then(record: VersionRecord, point: datetime) -> tuple[str, datetime] | None:
    """The files' reading: the last step (file order) before the first one after ``point``."""
    if record.created_at > point:
        return None
    found = ("candidate", record.created_at)
    for step in record.steps:
        if step.at > point:
            break
        found = (step.to, step.at)
    return found


@settings(max_examples=60, deadline=None)
@given(histories(), st.integers(-5, 15))
def test_the_columns_answer_as_the_files_do(entry: ModelEntry, minute: int) -> None:
    """The columns (after a round trip through the index) give each move's version, from, to, by, what was said
    and its kind flags in history order, and each moment's holders, prod's since and counts, as the files do."""
    moves, timeline = _round_trip(entry)
    history = sorted((e for r in entry.ordered for e in version_history(r)), key=history_order)
    assert listed(moves) == [(e.version, e.from_, e.to, e.at.isoformat(), e.by, micros(e.at)) for e in history]
    said = [moves.said[i][1:] for i in range(len(moves))]
    assert said == [(e.pr, e.approved_by, e.notes, e.reason, e.evidence) for e in history]
    flags = [move_of_code(code)[2:] for code in moves.code]
    assert flags == [(said_auto(e.reason), said_canary(e.notes)) for e in history]
    point = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minute)
    then = {r.version: _stage_then(r, point) for r in entry.ordered}
    there = {v: found for v, found in then.items() if found is not None}
    state = timeline.state(micros(point))
    if not there:
        assert state is None
        return
    assert state is not None
    *holders, since, candidates, versions = state
    for stage, holder in zip(HOLDER_STAGES, holders, strict=True):
        held = [(at, version_key(v), v) for v, (s, at) in there.items() if s == stage]
        assert (timeline.versions[holder] if holder >= 0 else None) == (max(held)[2] if held else None)
        if stage == "prod" and held:
            assert timeline.since[since] == max(held)[0].isoformat()
    assert (candidates, versions) == (sum(s == "candidate" for s, _ in there.values()), len(there))


def _round_trip(entry: ModelEntry) -> tuple[Moves, Timeline]:
    """The entry's moves and timeline as stored in an index entry and read back."""
    with tempfile.TemporaryDirectory() as cache:
        index, folder, stats = SummaryIndex(Path(cache)), Path(cache) / "m", {"1.0.0.yaml": (1, 2, 3, 4)}
        index.store(folder, now_ns(), stats, entry, "accuracy")
        moves, timeline = index.lookup(folder, "moves", stats), index.lookup(folder, "spans", stats)
    assert moves is not None and timeline is not None
    return moves.rows, timeline.rows


@settings(max_examples=60, deadline=None)
@given(histories(), st.booleans())
def test_the_text_table_from_the_columns_is_the_table_of_the_entries(entry: ModelEntry, one_model: bool) -> None:
    """``history``'s text is made from the kept moves' columns, never from a :class:`HistoryEntry`: it is the
    table the entries give, cell for cell, with WHEN each step's UTC minute whatever offset its file wrote."""
    moves, _ = _round_trip(entry)
    found = queries.History([("mn"[i % 2], moves, i, "promote") for i in range(len(moves))])
    assert report.history_text(found, one_model=one_model) == _entries_table(found.entries(), one_model=one_model)


def _entries_table(entries: list[HistoryEntry], *, one_model: bool) -> str:
    """The table as the entries say it, one cell at a time (the reference for the columns' rendering)."""
    if not entries:
        return "no history matches"
    models = not one_model or len({e.model for e in entries}) > 1
    rows = [("WHEN (UTC)", "VERSION", "STEP", "BY", "PR", "APPROVED BY", "NOTES / REASON")]
    for e in entries:
        why = "; ".join(x for x in (e.notes, e.reason) if x)
        if e.evidence:
            why += f" [evidence: {'; '.join(report.measure_text(m) for m in e.evidence)}]"
        rows.append((
            e.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
            f"{e.model}@{e.version}" if models else e.version,
            f"{e.from_} -> {e.to}" if e.from_ else "registered",
            e.by,
            f"#{e.pr}" if e.pr else "-",
            ",".join(e.approved_by) or "-",
            why,
        ))  # fmt: skip
    widths = [max(len(row[c]) for row in rows) for c in range(7)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def test_the_text_table_makes_no_entry_per_move(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    """``regops history``'s text is rendered from the kept moves' columns: no :class:`HistoryEntry` (a datetime
    and a frozen record per row) is made for it; --json and --csv still give entries."""
    edited(tree)
    capsys.readouterr()
    assert main(["history", "--json", "--registry", str(tree.root)]) == 0
    everything = [f"{e['model']}@{e['version']}" for e in json.loads(capsys.readouterr().out)]

    def refused(*_: object) -> HistoryEntry:
        raise AssertionError("an entry was made for the text table")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(queries, "_entry", refused)
        assert main(["history", "--registry", str(tree.root)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[2] for line in lines[1:]] == everything
