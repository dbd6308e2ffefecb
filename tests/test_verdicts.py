"""The per-model verdicts of a full `regops validate` (regops.verdicts): a warm check reads no clean model's files,
and a verdict never lets a problem pass — every check here compares against the same check with no cache at all."""

from __future__ import annotations

import cProfile
import os
import pstats
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from regops import api
from regops.freshness import model_keys
from regops.kinds import Problem
from regops.policy import locate_all
from regops.registry import Registry
from regops.schema import field_parts
from regops.store import locate
from regops.summaries import RACY_NS, now_ns
from regops.verdicts import Key, VerdictCache, digest
from tests.test_freshness import committed, git
from tests.test_summaries import aged

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from generate import generate

from tests.conftest import AgedPool

NOW = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(tmp_path_factory.mktemp("generated"), 3, 6, seed=3)


@pytest.fixture(scope="module")
def copies(template: Path, tmp_path_factory: pytest.TempPathFactory) -> AgedPool:
    """Copies of the generated registry made in batches and aged together (one wait per batch, per worker)."""
    return AgedPool(
        tmp_path_factory.mktemp("copies"),
        lambda root: Path(shutil.copytree(template, root / "registry")),
        lambda made: [aged(copy) for copy in made],  # the first waits; the others were made before it aged
    )


@pytest.fixture
def registry(copies: AgedPool, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of its own, aged past the racy window; its cache beside it."""
    copy = copies.take()
    monkeypatch.setenv("REGOPS_CACHE_DIR", str(copy.parent / "cache"))
    return copy


def check(registry: Path, now: datetime = NOW) -> list[Problem]:
    return api.validate(registry=registry, now=now)


def uncached(registry: Path, monkeypatch: pytest.MonkeyPatch, now: datetime = NOW) -> list[Problem]:
    """What validate says with no cache at all: every file read, every rule run."""
    with monkeypatch.context() as m:
        m.setenv("REGOPS_NO_CACHE", "1")
        return check(registry, now)


def judged(registry: Path, monkeypatch: pytest.MonkeyPatch, now: datetime = NOW) -> list[Problem]:
    """What validate says, having checked that it says the same with no cache at all."""
    found = check(registry, now)
    assert shown(found) == shown(uncached(registry, monkeypatch, now))
    return found


def verdicts(cache: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(cache.glob("verdict-*.marshal"))}


def warm(registry: Path) -> None:
    """A clean check that leaves a verdict for every model."""
    aged(registry)
    assert check(registry) == []
    assert len(verdicts(registry.parent / "cache")) == len(models(registry))


def models(registry: Path) -> list[Path]:
    return sorted((registry / "models").iterdir())


def versions(model: Path) -> list[Path]:
    return sorted(p for p in model.iterdir() if p.name != "model.yaml")


def in_place(path: Path, old: str, new: str) -> None:
    """Edit ``path`` keeping its size and mtime (the ctime, which nothing can set, moves)."""
    before = path.stat()
    text = path.read_text()
    assert len(old) == len(new) and old in text
    path.write_text(text.replace(old, new, 1))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size


def shown(problems: list[Problem]) -> list[str]:
    return [f"{p.path}:{p.line}: {p.field}: {p.message}" for p in problems]


# --- a warm check reads nothing it need not ---------------------------------------------------------------


def test_a_warm_check_reads_no_version_file(registry: Path) -> None:
    """With every verdict in place, the parse cache of no model folder is touched: no version file was read."""
    warm(registry)
    cache = registry.parent / "cache"
    parsed = [p for p in cache.iterdir() if p.name != "key" and not p.name.startswith(("verdict-", "summary-"))]
    for entry in parsed:
        entry.unlink()
    assert check(registry) == []
    again = [p for p in cache.iterdir() if p.name != "key" and not p.name.startswith(("verdict-", "summary-"))]
    folders = 1 + len(list((registry / "datasets").iterdir()))  # regops.yaml's folder and the datasets'
    assert len(parsed) == folders + len(models(registry)) and len(again) == folders


def test_no_verdict_is_kept_for_a_model_with_problems(registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aged(registry)
    broken = versions(models(registry)[1])[0]
    broken.write_text(broken.read_text().replace("stage: ", "stage: x", 1))
    aged(registry)
    first = check(registry)
    assert first and first == check(registry) == uncached(registry, monkeypatch)
    assert len(verdicts(registry.parent / "cache")) == len(models(registry)) - 1


# --- nothing invalid ever passes --------------------------------------------------------------------------


def test_an_edit_keeping_size_and_mtime_is_reported(registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warm(registry)
    path = versions(models(registry)[0])[2]
    text = path.read_text()
    stage = next(line for line in text.splitlines() if line.startswith("stage: "))
    in_place(path, stage, "stage: " + "x" * (len(stage) - len("stage: ")))
    found = judged(registry, monkeypatch)
    assert any(p.path.endswith(path.name) and p.field == "stage" for p in found)


def test_a_file_edited_within_the_racy_window_gets_no_verdict(registry: Path) -> None:
    """git's racy case: a file modified just before the check could change again with the same stat data, so
    its model's verdict is not written; once the file is older than the window, it is."""
    warm(registry)
    cache = registry.parent / "cache"
    model = models(registry)[0]
    path = versions(model)[0]
    path.write_text(path.read_text())  # same bytes, new stat data
    # Modified "now" as far as a coarse clock can tell, however slowly the check below starts.
    ahead = now_ns() + 60 * RACY_NS
    os.utime(path, ns=(ahead, ahead))
    before = verdicts(cache)
    (cache / VerdictCache(cache).name(model)).unlink()
    assert check(registry) == []
    assert len(verdicts(cache)) == len(before) - 1
    old = now_ns() - 10 * RACY_NS
    os.utime(path, ns=(old, old))
    time.sleep(RACY_NS / 1e9 + 0.05)  # the ctime that sets, past the window too
    assert check(registry) == []
    assert verdicts(cache).keys() == before.keys()


def test_a_change_to_regops_yaml_is_seen(registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warm(registry)
    config = registry / "regops.yaml"
    config.write_text(config.read_text().replace("staging: {from: [dev]", "staging: {from: [candidate]"))
    found = judged(registry, monkeypatch)
    assert any("is not allowed by regops.yaml" in p.message and "/models/" in p.path for p in found)


def test_a_change_to_a_referenced_dataset_is_seen(registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warm(registry)
    used = next(line for line in versions(models(registry)[0])[0].read_text().splitlines() if "  dataset: " in line)
    name, _, version = used.split("dataset: ", 1)[1].strip().partition("@")
    dataset = registry / "datasets" / name / f"{version}.yaml"
    dataset.write_text(_flip_hash(dataset.read_text()))
    found = judged(registry, monkeypatch)
    assert any(p.field == "training.dataset_hash" for p in found)
    dataset.unlink()
    gone = judged(registry, monkeypatch)
    assert any(p.field == "training.dataset" and "does not resolve" in p.message for p in gone)


def test_a_change_to_model_yaml_is_seen(registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warm(registry)
    config = models(registry)[0] / "model.yaml"
    config.write_text(config.read_text().replace("{name: accuracy", "{name: recall_at_9", 1))
    found = judged(registry, monkeypatch)
    assert any("recall_at_9" in p.message for p in found)


def test_another_model_claiming_a_clean_models_hub_repo_is_reported_on_both(
    registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm(registry)
    first, second = models(registry)[:2]
    config = first / "model.yaml"
    config.write_text(config.read_text().replace(f"acme-ml/{first.name}", f"acme-ml/{second.name}"))
    found = judged(registry, monkeypatch)
    assert {p.path.split("/")[2] for p in found if "Hub repo" in p.message} == {first.name, second.name}


def test_files_added_and_removed_are_seen(registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    warm(registry)
    first, second = models(registry)[:2]
    copy = first / "99.0.0.yaml"
    copy.write_text(versions(first)[0].read_text())
    (second / ".notes").write_text("hidden\n")
    (second / "README.txt").write_text("not a registry file\n")
    found = judged(registry, monkeypatch)
    assert any(p.path.endswith("99.0.0.yaml") and p.field == "version" for p in found)
    assert {p.path.rsplit("/", 1)[1] for p in found if "/models/" + second.name in p.path} == {".notes", "README.txt"}
    copy.unlink()
    parent = versions(first)[0]
    parent.unlink()  # the next version's parent
    gone = judged(registry, monkeypatch)
    assert any("is not in the registry" in p.message for p in gone)


def test_a_parent_removed_from_another_model_is_reported_on_the_clean_one(
    registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = models(registry)[:2]
    child, target = versions(first)[-1], versions(second)[0]
    text = child.read_text()
    line = next(line for line in text.splitlines() if line.startswith("parent: "))
    child.write_text(text.replace(line, f"parent: {second.name}@{target.stem}"))
    warm(registry)
    target.unlink()
    found = judged(registry, monkeypatch)
    missing = f"parent {second.name}@{target.stem} is not in the registry"
    assert any(p.path.endswith(child.name) and p.message == missing for p in found)


def test_a_timestamp_in_the_future_of_an_earlier_now_is_reported(
    registry: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A verdict made at NOW says nothing of an earlier moment: versions created after it are in its future.

    The moment is just before each model's newest version (one file a model to place, not every file)."""
    warm(registry)
    earlier = datetime(2025, 12, 1, tzinfo=UTC)
    found = judged(registry, monkeypatch, earlier)
    future = {p.path for p in found if "is in the future" in p.message}
    assert {path.split("/")[2] for path in future} == {m.name for m in models(registry)}


def test_each_file_with_problems_is_parsed_once_to_place_them(registry: Path) -> None:
    """Many problems in one file (as when every version is in the future of an earlier ``now``): all placed by one
    parse of the file (PyYAML's nodes; ruamel's round trip only where they could differ), each at the line and
    column a parse for it alone gives."""
    path = versions(models(registry)[0])[0]
    fields = ["version", "stage", "created_at", "artifacts.files[0].path", "transitions", "no_such_field"]
    problems = [Problem(f"registry/{path.relative_to(registry).as_posix()}", field=f, message="m") for f in fields]
    profile = cProfile.Profile()
    placed = list(profile.runcall(lambda: list(locate_all(Registry.load(registry), problems))))
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    parses = {
        (name, "ruamel" in f): calls for (f, _l, name), (calls, *_rest) in stats.items() if name in ("load", "compose")
    }
    assert parses.get(("compose", False)) == 1 and not parses.get(("load", True))
    assert [(p.line, p.col) for p in placed] == [locate(path, field_parts(f)) for f in fields]
    assert len({p.line for p in placed}) > 3  # different places, not one answer for all


# --- a damaged entry is ignored and rebuilt ---------------------------------------------------------------


def _truncated(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def _edited(raw: bytes) -> bytes:
    return raw[:-3] + bytes([raw[-3] ^ 1]) + raw[-2:]


def _garbage(raw: bytes) -> bytes:
    return b"\0" * len(raw)


@pytest.mark.parametrize("damage", [_truncated, _edited, _garbage])
def test_a_damaged_entry_is_ignored_and_rebuilt(
    registry: Path, monkeypatch: pytest.MonkeyPatch, damage: object
) -> None:
    warm(registry)
    cache = registry.parent / "cache"
    good = verdicts(cache)
    path = versions(models(registry)[0])[1]
    in_place(path, "stage: ", "stage:x")  # what a trusted entry would hide
    for name, raw in good.items():
        (cache / name).write_bytes(damage(raw))  # type: ignore[operator]
    found = judged(registry, monkeypatch)
    assert any(p.path.endswith(path.name) for p in found)
    in_place(path, "stage:x", "stage: ")
    time.sleep(RACY_NS / 1e9 + 0.05)
    assert check(registry) == []
    rebuilt = verdicts(cache)
    assert rebuilt.keys() == good.keys() and all(rebuilt[n] != damage(good[n]) for n in good)  # type: ignore[operator]


def test_an_entry_of_another_shape_is_ignored(registry: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A signed entry whose payload is not this regops' shape (an older format) is not trusted."""
    warm(registry)
    cache = VerdictCache(registry.parent / "cache")
    model = models(registry)[0]
    entry = cache.read(model)
    for shape in (entry["facts"][:4], [{}, [], [], 0, {}, "extra"], [{"1.0.0": 7}, [], [], 0, {}]):
        cache.write(model, {**entry, "facts": shape})
        assert check(registry) == []
        assert cache.read(model) == entry
    path = versions(model)[0]
    in_place(path, "stage: ", "stage:x")
    cache.write(model, {**entry, "facts": entry["facts"][:4]})
    assert shown(check(registry)) == shown(uncached(registry, monkeypatch))


# --- cold and warm agree ----------------------------------------------------------------------------------


def _mutate(registry: Path, kind: str, at: int, other: int) -> None:
    every = models(registry)
    model, elsewhere = every[at % len(every)], every[other % len(every)]
    own, theirs = versions(model), versions(elsewhere)
    if not own or not theirs:
        return
    path, target = own[at % len(own)], theirs[other % len(theirs)]
    text = path.read_text() if path.exists() else ""
    edits = {
        "corrupt": lambda: path.write_text("not: [valid\n"),
        "stage": lambda: path.write_text(text.replace("stage: ", "stage: x", 1)),
        "delete": path.unlink,
        "future": lambda: path.write_text(text.replace("created_at: 20", "created_at: 29", 1)),
        "parent": lambda: path.write_text(_set_parent(text, f"{elsewhere.name}@{target.stem}")),
        "hub": lambda: (model / "model.yaml").write_text(
            (model / "model.yaml").read_text().replace(f"acme-ml/{model.name}", f"acme-ml/{elsewhere.name}")
        ),
        "hidden": lambda: (model / ".hidden.yaml").write_text(text),
        "dataset": lambda: _edit_dataset(registry, at),
        "config": lambda: (registry / "regops.yaml").write_text(
            (registry / "regops.yaml").read_text().replace("require_canary: true", "require_canary: false")
        ),
    }
    edits[kind]()


def _set_parent(text: str, parent: str) -> str:
    lines = [line for line in text.splitlines() if not line.startswith("parent: ")]
    return "\n".join([*lines[:5], f"parent: {parent}", *lines[5:]]) + "\n"


def _edit_dataset(registry: Path, at: int) -> None:
    files = sorted((registry / "datasets").rglob("*.yaml"))
    path = files[at % len(files)]
    path.write_text(_flip_hash(path.read_text()))


def _flip_hash(text: str) -> str:
    """The dataset's hash with its last digit changed (still a well-formed hash)."""
    line = next(line for line in text.splitlines() if line.startswith("hash: "))
    return text.replace(line, line[:-1] + ("0" if line[-1] != "0" else "1"))


MUTATIONS = ("corrupt", "stage", "delete", "future", "parent", "hub", "hidden", "dataset", "config")


# 4 drawn examples beside the explicit ones, which between them make every kind of mutation, each where a verdict
# left standing would hide it. Breaking regops.fullcheck by hand, each fails as marked: a verdict kept though its
# folder changed (all), a clean model's Hub repos or datasets left unchecked, a verdict kept for a model with problems.
@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 20), st.integers(0, 20)), min_size=1, max_size=4))
@example([("hub", 1, 2), ("stage", 0, 0)])  # a clean model's Hub repo claimed
@example([("dataset", 27, 0), ("future", 1, 1), ("corrupt", 2, 2)])  # 27: a training set in use (drawn: 0-20)
@example([("parent", 0, 1), ("delete", 1, 1), ("hidden", 2, 0)])  # a parent in another model, deleted there
@example([("config", 0, 0)])  # regops.yaml changed: every verdict set aside
def test_warm_and_cold_report_the_same_problems(copies: AgedPool, mutations: list[tuple[str, int, int]]) -> None:
    registry = copies.take()
    with pytest.MonkeyPatch.context() as m:
        m.setenv("REGOPS_CACHE_DIR", str(registry.parent / "cache"))
        warm(registry)
        for kind, at, other in mutations:
            _mutate(registry, kind, at, other)
        warm_found = shown(check(registry))
        assert shown(check(registry)) == warm_found  # and again, from whatever verdicts the first one left
        m.setenv("REGOPS_NO_CACHE", "1")
        assert warm_found == shown(check(registry))


# --- keyed by git's tree where git vouches for a folder (regops.freshness) ------------------------------------


@pytest.fixture
def repo(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The generated registry committed in a git repository, aged past the racy window: folders keyed by git."""
    monkeypatch.setenv("REGOPS_CACHE_DIR", str(tmp_path / "cache"))
    return committed(template, tmp_path / "repo") / "registry"


def by_tree(registry: Path) -> list[str]:
    """The models whose verdict is found by their git key alone (no stat data given)."""
    cache = VerdictCache.from_environment()
    trees = model_keys(registry / "models", [m.name for m in models(registry)])
    inputs = digest(registry / "regops.yaml")
    return [
        m.name
        for m in models(registry)
        if cache.lookup(m, Key(trees[m.name], inputs, digest(m / "model.yaml"))) is not None
    ]


def test_a_committed_registry_s_verdicts_are_found_by_git_s_tree(repo: Path) -> None:
    assert by_tree(repo) == []
    assert check(repo) == []
    assert by_tree(repo) == [m.name for m in models(repo)]


def test_a_same_size_edit_under_a_git_key_is_reported(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """git's index sees the edit (its ctime moved): the folder loses its git key and is read again."""
    assert check(repo) == []
    path = versions(models(repo)[1])[0]
    stage = next(line for line in path.read_text().splitlines() if line.startswith("stage: "))
    in_place(path, stage, "stage: " + "x" * (len(stage) - len("stage: ")))
    found = judged(repo, monkeypatch)
    assert any(p.path.endswith(path.name) and p.field == "stage" for p in found)
    assert models(repo)[1].name not in by_tree(repo)


def test_a_committed_edit_is_a_new_tree_and_is_reported(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert check(repo) == []
    path = versions(models(repo)[0])[1]
    path.write_text(path.read_text().replace("stage: ", "stage: x", 1))
    git(repo.parent, "commit", "-q", "-am", "a broken stage")
    found = judged(repo, monkeypatch)
    assert any(p.path.endswith(path.name) and p.field == "stage" for p in found)
