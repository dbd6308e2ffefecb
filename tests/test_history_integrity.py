"""History integrity: what a registry says held a stage at a moment is what held it.

A pull request may not date a new transition before the model's last transition already on its base (beyond the
clock skew), and no history may have two versions of a model in one of dev, staging and prod at the same moment.
``regops resolve MODEL@STAGE --at`` reads that history; these tests judge it by what validate, the approvals check
and resolve answer.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from regops import api
from regops.cli import main
from regops.errors import StageEmptyError
from regops.registry import HOLDER_STAGES, Registry
from tests.conftest import REPO as PROJECT
from tests.conftest import Tree, commit, copy_history, git, isolated_build, replay, run_regops, weights
from tests.servers.github_fixtures import GitHubFixture
from tests.test_github import REPO, check, open_pull, sha

OLD_PROD = "registry/models/sentiment/1.0.0.yaml"
STAGED = "registry/models/sentiment/1.1.0.yaml"
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _shift(repo: Path, days: int) -> None:
    """Move every timestamp of sentiment's version files ``days`` into the past, as a history that began then."""
    for path in sorted((repo / "registry/models/sentiment").glob("1.*.yaml")):
        text = STAMP.sub(lambda m: _iso(datetime.fromisoformat(m.group()) - timedelta(days=days)), path.read_text())
        path.write_text(text)


def _last_at(repo: Path, relative: str) -> datetime:
    return Registry.load(repo / "registry").version("sentiment", Path(relative).stem).steps[-1].at


@pytest.fixture(scope="module")
def _base_template(_history_template: Path, tmp_path_factory: pytest.TempPathFactory, git_template: Path) -> Path:
    """:func:`base` built once per worker, through the CLI; each test gets a copy. Every moment a test compares is
    read from the files (the base's last transition) or is later than them (a promotion made now)."""
    folder = tmp_path_factory.mktemp("base-template")
    repo = copy_history(_history_template, folder)
    with isolated_build(tmp_path_factory.mktemp("base-home"), git_template), pytest.MonkeyPatch.context() as patch:
        patch.chdir(repo)
        replay(repo, [
            ["promote", "sentiment@1.1.0", "--to", "staging", "--notes", "n", "--by", "alice"],
            ["canary", "record", "sentiment@1.1.0", "--result", "passed"],
        ])  # fmt: skip
        _shift(repo, 200)
        commit(repo, "the history so far")
        weights(folder / "out-1.2.0", "1.2.0")
        replay(repo, [
            ["register", "sentiment", "--artifacts", str(folder / "out-1.2.0"), "--evals", str(folder / "evals2.json"),
             "--params", str(folder / "params.json"), "--dataset", "reviews@2025-09-08", "--version", "1.2.0",
             "--by", "training-bot[bot]"],
            ["auto-promote", "--by", "github-actions[bot]"],
        ])  # fmt: skip
    assert Registry.load(repo / "registry").version("sentiment", "1.2.0").stage == "dev"
    return folder


@pytest.fixture
def base(_base_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """main: sentiment 1.0.0 in prod since ~200 days ago and 1.1.0 in staging since then (canary passed); 1.2.0
    registered and auto-promoted to dev just now, the model's last transition on main."""
    repo = copy_history(_base_template, tmp_path)
    monkeypatch.chdir(repo)
    return repo


def _prod_dated(repo: Path, capsys: pytest.CaptureFixture[str], moment: datetime, *, handover: bool = False) -> None:
    """On branch ``change``: alice promotes 1.1.0 to prod through the CLI (which archives 1.0.0 now), then dates
    1.1.0's new transition ``moment`` (with ``handover``, 1.0.0's too: it leaves prod as 1.1.0 enters)."""
    git(repo, "checkout", "-q", "-b", "change", "main")
    assert main(["promote", "sentiment@1.1.0", "--to", "prod", "--notes", "canary held", "--by", "alice"]) == 0
    capsys.readouterr()
    now = _iso(_last_at(repo, STAGED))
    for relative in (STAGED, OLD_PROD) if handover else (STAGED,):
        path = repo / relative
        text = path.read_text()
        assert text.count(f"at: {now}") == 1, text
        path.write_text(text.replace(f"at: {now}", f"at: {_iso(moment)}"))
    commit(repo, "promote 1.1.0 to prod")


def _validate_base(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["validate", "--base", "main"])
    return code, capsys.readouterr().out.splitlines()


# --- validate --base: no new transition before the model's last one on the base --------------------------


def test_a_prod_promotion_backdated_by_months_is_refused(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 7: staging -> prod dated months ago, the old prod archived now: `validate --base` passed, and
    `resolve sentiment@prod --at` then named 1.1.0 for months in which 1.0.0 served."""
    latest = _last_at(base, "registry/models/sentiment/1.2.0.yaml")
    then = latest - timedelta(days=150)
    _prod_dated(base, capsys, then)
    now = _last_at(base, OLD_PROD)
    before = {p: (base / p).read_bytes() for p in (STAGED, OLD_PROD)}

    code, rows = _validate_base(capsys)

    assert code == 1, rows
    backdated = [r for r in rows if r.startswith(f"{STAGED}:") and "transitions[2].at:" in r]
    assert backdated == [
        f"{STAGED}:{_where(base, STAGED, _iso(then))}: transitions[2].at: staging → prod is dated {then.isoformat()}, "
        f"before the last transition of this model already on main (1.2.0: candidate → dev at {latest.isoformat()}): "
        "history is only appended, never backdated; record the transition as of now (as `regops promote` and "
        "`regops rollback` do)"
    ], rows
    # The history it makes is refused too: 1.0.0 served until now, and 1.1.0 would have served since then.
    overlap = f"sentiment 1.0.0 and 1.1.0 both held prod from {then.isoformat()} until {now.isoformat()}"
    assert [r.split(": ")[:2] for r in rows if overlap in r] == [
        [f"{OLD_PROD}:{_where(base, OLD_PROD, '{from: prod, to: archived')}", "transitions[3]"],
        [f"{STAGED}:{_where(base, STAGED, '{from: staging, to: prod')}", "transitions[2]"],
    ], rows
    assert {p: (base / p).read_bytes() for p in (STAGED, OLD_PROD)} == before, "validate writes nothing"


def _where(repo: Path, relative: str, marker: str) -> str:
    """``line:col`` of ``marker`` in a file."""
    lines = (repo / relative).read_text().splitlines()
    return next(f"{n}:{line.index(marker) + 1}" for n, line in enumerate(lines, 1) if marker in line)


def test_the_backdated_promotion_fails_the_approvals_check(
    base: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """With every approval it needs, the pull request still fails `regops/approvals`: the gate includes
    `validate --base`."""
    _prod_dated(base, capsys, _last_at(base, "registry/models/sentiment/1.2.0.yaml") - timedelta(days=150))
    number = open_pull(gh, base, author="alice", branch="change")
    gh.add_review(REPO, number, "bob", "APPROVED")

    code, out = check(capsys, number)

    assert code == 1, out
    statuses = gh.statuses(REPO, sha(base))
    assert [s["state"] for s in statuses][-1:] == ["failure"], statuses
    assert "transitions[2].at: staging → prod is dated" in out
    assert "before the last transition of this model already on main" in out


@pytest.mark.parametrize(("minutes", "refused"), [(2, False), (5, False), (10, True)])
def test_clock_skew_is_allowed_beyond_it_refused(
    base: Path, capsys: pytest.CaptureFixture[str], minutes: int, refused: bool
) -> None:
    """A transition up to five minutes (the documented clock skew) before the base's last one is a clock
    difference between machines, not a rewrite of history."""
    latest = _last_at(base, "registry/models/sentiment/1.2.0.yaml")
    _prod_dated(base, capsys, latest - timedelta(minutes=minutes), handover=True)

    code, rows = _validate_base(capsys)

    assert (code == 1) is refused, rows
    assert any("history is only appended, never backdated" in r for r in rows) is refused, rows
    if not refused:
        assert rows == ["ok: no problems"]


def test_a_promotion_made_now_passes(base: Path, capsys: pytest.CaptureFixture[str]) -> None:
    git(base, "checkout", "-q", "-b", "change", "main")
    run_regops(capsys, base, "promote", "sentiment@1.1.0", "--to", "prod", "--notes", "canary held", "--by", "alice")
    assert _validate_base(capsys) == (0, ["ok: no problems"])


# --- validate: never two versions in one stage at one moment ------------------------------------------------

ROLLED_BACK = "models/sentiment/1.1.0.yaml"  # prod 02-10 .. 03-01 in tests/data, then 1.0.0 comes back
RETURNED = "models/sentiment/1.0.0.yaml"


def _rows(tree: Tree, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["validate", "--registry", str(tree.root)])
    return code, capsys.readouterr().out.splitlines()


def test_overlapping_prod_intervals_are_refused_naming_both_versions(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    """Written by hand: 1.0.0 comes back to prod on 03-01, but 1.1.0 leaves it only on 03-05. Each file is right on
    its own (time order, legal steps, one prod now), so only the history as a whole shows two prods."""
    tree.replace(ROLLED_BACK, "to: archived, at: 2026-03-01T10:00:00Z", "to: archived, at: 2026-03-05T10:00:00Z")
    before = tree.snapshot()

    code, rows = _rows(tree, capsys)

    assert code == 1, rows
    message = (
        "sentiment 1.1.0 and 1.0.0 both held prod from 2026-03-01T10:00:00+00:00 until 2026-03-05T10:00:00+00:00: "
        "a stage has one holder at a time (the old one leaves it as the new one enters, as `regops promote` records "
        "it); a transition is backdated or a handover is missing"
    )
    assert rows == [
        f"registry/{RETURNED}:30:5: transitions[4]: {message}",
        f"registry/{ROLLED_BACK}:28:5: transitions[3]: {message}",
        "2 problems in 2 files",
    ]
    assert tree.snapshot() == before, "validate writes nothing"


def test_two_hand_written_versions_in_staging_at_once_are_refused(
    tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two versions written from scratch: 2.1.0 entered staging while 2.0.0 was still there, and both have left
    it since, so no stage has two versions now and only the history shows it."""
    text = tree.read("models/intent/1.0.0.yaml")
    head = text[: text.index("stage:")].replace("created_at: 2026-04-20T10:00:00Z", "created_at: 2026-01-31T10:00:00Z")
    steps = {
        "2.0.0": ("2026-02-01T10:00:00Z", "2026-02-02T10:00:00Z", "2026-02-20T10:00:00Z"),
        "2.1.0": ("2026-02-05T10:00:00Z", "2026-02-10T10:00:00Z", "2026-02-25T10:00:00Z"),
    }
    for version, (dev, staging, archived) in steps.items():
        tree.write(
            f"models/intent/{version}.yaml",
            head.replace("version: 1.0.0", f"version: {version}") + "stage: archived\ntransitions:\n"
            f"  - {{from: candidate, to: dev, at: {dev}, by: alice}}\n"
            f"  - {{from: dev, to: staging, at: {staging}, by: alice}}\n"
            f"  - {{from: staging, to: archived, at: {archived}, by: alice}}\n",
        )

    code, rows = _rows(tree, capsys)

    message = "intent 2.0.0 and 2.1.0 both held staging from 2026-02-10T10:00:00+00:00 until 2026-02-20T10:00:00+00:00"
    assert code == 1, rows
    assert [r.split(": ", 2)[:2] for r in rows if message in r] == [
        ["registry/models/intent/2.0.0.yaml:27:5", "transitions[2]"],
        ["registry/models/intent/2.1.0.yaml:26:5", "transitions[1]"],
    ], rows
    assert rows[-1] == "2 problems in 2 files"


def test_a_rollback_history_is_valid_and_resolves(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    """archived -> prod after another version's prod (a rollback) hands prod over at one moment: no overlap."""
    assert _rows(tree, capsys) == (0, ["ok: no problems"])
    served = {at: api.resolve("sentiment@prod", registry=tree.root, at=at).version for at in (
        "2026-02-10T09:59:59Z", "2026-02-10T10:00:00Z", "2026-03-01T09:59:59Z", "2026-03-01T10:00:00Z",
        "2026-04-01T09:59:59Z", "2026-04-01T10:00:00Z",
    )}  # fmt: skip
    assert list(served.values()) == ["1.0.0", "1.1.0", "1.1.0", "1.0.0", "1.0.0", "1.2.0"]


def _replayed(registry: Registry, model: str) -> list[tuple[datetime, dict[str, str | None]]]:
    """Who held each stage after every moment of the model's history, replaying its records in order."""
    holders: dict[str, str | None] = dict.fromkeys(HOLDER_STAGES)
    moments: list[tuple[datetime, dict[str, str | None]]] = []
    for entry in registry.history(model):
        if entry.from_ in holders and holders[entry.from_] == entry.version:
            holders[entry.from_] = None
        if entry.to in holders:
            holders[entry.to] = entry.version
        if moments and moments[-1][0] == entry.at:
            moments.pop()
        moments.append((entry.at, dict(holders)))
    return moments


def test_resolve_at_on_the_example_registry_is_what_its_history_says(capsys: pytest.CaptureFixture[str]) -> None:
    """Every moment of every model's history in registry/: resolve --at names the version the records, replayed
    one by one, put in the stage (and a second before the moment, what held it before)."""
    registry = Registry.load(PROJECT / "registry")
    checked = 0
    for model in registry.model_names():
        previous: dict[str, str | None] = dict.fromkeys(HOLDER_STAGES)
        for moment, holders in _replayed(registry, model):
            for stage in HOLDER_STAGES:
                for at, expected in ((moment - timedelta(seconds=1), previous[stage]), (moment, holders[stage])):
                    assert _resolved(registry, f"{model}@{stage}", at) == expected, (model, stage, at)
                    checked += 1
            previous = holders
    assert checked > 300
    assert main(["resolve", "sentiment@prod", "--at", "2026-06-01", "--registry", str(PROJECT / "registry")]) == 0
    assert "sentiment@prod at 2026-06-01T00:00:00+00:00: 1.2.1" in capsys.readouterr().out


def _resolved(registry: Registry, ref: str, at: datetime) -> str | None:
    try:
        return registry.resolve(ref, at=at).version
    except StageEmptyError:
        return None
