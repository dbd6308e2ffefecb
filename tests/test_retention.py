"""Retention on the local backend: the plan's reasons, the move, interruptions, restore."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from regops import api
from regops.cli import main
from regops.errors import RegopsError
from regops.records import VersionRecord
from regops.registry import Registry
from regops.retention import _keep_ancestors, artifacts_of
from regops.weights import StorageError
from regops.workspace import _as_published
from tests.conftest import Tree, commit, git, registry_repo

LATER = "2027-06-01"  # every version in the test registry is older than the TTL by then
POLICY = "cold_storage: {backend: local, path: .regops/cold}\nretention: {keep_prod: 0, candidate_ttl_days: 30}\n"


def objects(root: object) -> set[str]:
    from pathlib import Path

    folder = Path(str(root)) / "sha256"
    return {p.name for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


@pytest.fixture
def policy_tree(stored_tree: Tree) -> Tree:
    stored_tree.write("regops.yaml", stored_tree.read("regops.yaml") + POLICY)
    return stored_tree


def test_plan_keeps_current_stages_recent_versions_and_every_ancestor_even_with_keep_prod_0(policy_tree: Tree) -> None:
    decisions = {d.ref: (d.action, d.reason) for d in api.retention_plan(registry=policy_tree.root, now=LATER)}
    assert decisions == {
        "sentiment@1.4.0-rc.2": ("move", "never promoted, older than 30 days, no kept version descends from it"),
        "sentiment@1.4.0-rc.1": ("keep", "current dev"),
        "sentiment@1.3.0": ("keep", "current staging"),
        "sentiment@1.2.0": ("keep", "current prod"),
        # keep_prod: 0 keeps no former prod version for its own sake, but the ancestors of what is kept
        # stay hot, across models (distilled@1.0.0 descends from sentiment@1.2.0).
        "sentiment@1.1.0": ("keep", "ancestor of distilled@1.0.0 (kept hot)"),
        "sentiment@1.0.0": ("keep", "ancestor of distilled@1.0.0 (kept hot)"),
        "distilled@1.0.0": ("keep", "current prod"),
        "intent@1.0.0": ("keep", "current prod"),
    }
    # A model.yaml override wins over regops.yaml, and the TTL keeps what is recent.
    policy_tree.write(
        "models/sentiment/model.yaml", policy_tree.read("models/sentiment/model.yaml") + "retention: {keep_prod: 1}\n"
    )
    soon = {d.ref: d for d in api.retention_plan(registry=policy_tree.root, now="2026-06-20")}
    assert soon["sentiment@1.4.0-rc.2"].action == "keep"
    assert soon["sentiment@1.4.0-rc.2"].reason == "registered 9 day(s) ago, within the 30-day TTL"


def test_plan_changes_nothing_and_prints_a_table(policy_tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    before = policy_tree.snapshot()
    assert main(["retention", "plan", "--registry", str(policy_tree.root), "--at", LATER]) == 0
    out = capsys.readouterr().out
    assert "sentiment@1.4.0-rc.2  move to cold  never promoted" in out
    assert out.rstrip().endswith("7 kept hot, 1 to move, 0 already cold")
    assert policy_tree.snapshot() == before


def test_apply_moves_records_removes_the_hot_copy_and_restore_brings_it_back(
    policy_tree: Tree, capsys: pytest.CaptureFixture[str]
) -> None:
    hot, cold = policy_tree.base / ".regops/store", policy_tree.base / ".regops/cold"
    registry = Registry.load(policy_tree.root)
    moving = artifacts_of(registry.version("sentiment", "1.4.0-rc.2"))
    shared = {a.sha256 for r in registry.iter_versions() if r.version != "1.4.0-rc.2" for a in artifacts_of(r)}
    own = {a.sha256 for a in moving} - shared
    assert own and own <= objects(hot)

    assert main(["retention", "apply", "--registry", str(policy_tree.root), "--at", LATER, "--json"]) == 0
    applied = json.loads(capsys.readouterr().out)
    assert [d["version"] for d in applied if d["action"] == "move"] == ["1.4.0-rc.2"]
    text = policy_tree.read("models/sentiment/1.4.0-rc.2.yaml")
    assert "storage: {backend: local, tier: cold}" in text
    assert {a.sha256 for a in moving} <= objects(cold)
    assert not own & objects(hot), "the hot copy is removed once the cold copy is verified and recorded"
    assert shared & {a.sha256 for a in moving} <= objects(hot), "objects other hot versions share stay"
    assert api.validate(registry=policy_tree.root) == []

    # A second run has nothing to do.
    assert main(["retention", "apply", "--registry", str(policy_tree.root), "--at", LATER]) == 0
    assert "0 moved" in capsys.readouterr().out

    with pytest.raises(RegopsError, match=r"in cold storage; run `regops restore sentiment@1.4.0-rc.2` first"):
        api.download("sentiment@1.4.0-rc.2", registry=policy_tree.root, dest=policy_tree.base / "out")
    api.restore("sentiment@1.4.0-rc.2", registry=policy_tree.root)
    _, written = api.download("sentiment@1.4.0-rc.2", registry=policy_tree.root, dest=policy_tree.base / "out")
    assert sorted(p.name for p in written) == sorted(a.path.split("/")[-1] for a in moving)


def test_a_failed_copy_changes_nothing_and_a_rerun_finishes(policy_tree: Tree) -> None:
    blocker = policy_tree.base / ".regops/cold"
    blocker.parent.mkdir(exist_ok=True)
    blocker.write_text("a file where the cold store goes\n")
    (policy_tree.root / ".regops.lock").touch()  # the write lock's file: not data
    before = policy_tree.snapshot()
    with pytest.raises(StorageError, match=r"cannot write to local storage at .*\.regops/cold"):
        api.retention_apply(registry=policy_tree.root, now=LATER)
    assert policy_tree.snapshot() == before, "nothing recorded, nothing removed"
    blocker.unlink()
    api.retention_apply(registry=policy_tree.root, now=LATER)
    assert Registry.load(policy_tree.root).version("sentiment", "1.4.0-rc.2").storage["tier"] == "cold"


def recorded_not_finished(tree: Tree) -> VersionRecord:
    """sentiment@1.4.0-rc.2 copied to cold storage and recorded there, its hot copy left (the next run finishes)."""
    from regops import lifecycle

    record = Registry.load(tree.root).version("sentiment", "1.4.0-rc.2")
    storage = api.open_storage(Registry.load(tree.root))
    location = storage.to_cold(artifacts_of(record), record.storage, model="sentiment", version="1.4.0-rc.2")
    lifecycle.apply(lifecycle.set_storage(record, location))
    return record


def test_a_move_recorded_but_not_finished_is_finished_by_the_next_run(policy_tree: Tree) -> None:
    """The state a run leaves when it stops between recording the move and removing the hot copy."""
    record = recorded_not_finished(policy_tree)
    hot = policy_tree.base / ".regops/store"
    leftover = {a.sha256 for a in artifacts_of(record)} & objects(hot)
    assert leftover

    plan = {d.ref: d for d in api.retention_plan(registry=policy_tree.root, now=LATER)}
    assert plan["sentiment@1.4.0-rc.2"].action == "finish"
    api.retention_apply(registry=policy_tree.root, now=LATER)
    assert not leftover - {
        a.sha256
        for r in Registry.load(policy_tree.root).iter_versions()
        if r.version != "1.4.0-rc.2"
        for a in artifacts_of(r)
    } & objects(hot)
    plan = {d.ref: d for d in api.retention_plan(registry=policy_tree.root, now=LATER)}
    assert plan["sentiment@1.4.0-rc.2"].action == "cold"


# --- what retention owns -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cold", "how"),
    [
        ("./.regops/store/", "the same folder as"),
        (".regops/store/cold", "inside"),
        (".regops/alias", "the same folder as"),  # a link to the hot store
        (".regops", "a folder holding"),
    ],
)
def test_a_cold_store_overlapping_the_hot_one_is_a_problem_and_retention_moves_nothing(
    stored_tree: Tree, cold: str, how: str
) -> None:
    (stored_tree.base / ".regops/alias").symlink_to("store")
    stored_tree.write(
        "regops.yaml",
        stored_tree.read("regops.yaml") + POLICY.replace("path: .regops/cold", f"path: {cold}"),
    )
    problems = [p for p in api.validate(registry=stored_tree.root) if p.field == "cold_storage.path"]
    assert [p.message for p in problems] == [
        f"the cold store {stored_tree.base / cold} is {how} {stored_tree.base / '.regops/store'} "
        f"({(stored_tree.base / '.regops/store').resolve()}), the hot store (storage.path): retention would delete "
        "the weights it moves; give cold_storage a folder of its own"
    ]
    (stored_tree.root / ".regops.lock").touch()
    before = stored_tree.snapshot()
    with pytest.raises(RegopsError, match=r"^retention refused, nothing moved: registry/regops.yaml: cold_storage"):
        api.retention_apply(registry=stored_tree.root, now=LATER)
    assert stored_tree.snapshot() == before, "nothing recorded, copied or removed"


def test_a_model_whose_hub_repo_is_another_models_archive_is_refused_before_anything_moves(tree: Tree) -> None:
    tree.replace("regops.yaml", "storage: {backend: local, path: .regops/store}", "storage: {backend: hf}")
    tree.write("regops.yaml", tree.read("regops.yaml") + "cold_storage: {backend: hf}\n")
    tree.replace("models/intent/model.yaml", "acme-ml/intent", "ACME-ML/Sentiment-Archive")
    (tree.root / ".regops.lock").touch()
    before = tree.snapshot()
    with pytest.raises(
        RegopsError,
        match=r"^retention refused, nothing moved: .*acme-ml/sentiment-archive is the Hub repo of intent and also "
        r"the archive repo of sentiment",
    ):
        api.retention_apply(registry=tree.root, now=LATER)  # no Hub is reachable: refused before any request
    assert tree.snapshot() == before


def test_a_store_another_registry_owns_is_refused_and_keeps_every_object(
    policy_tree: Tree, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import shutil

    from regops.adapters.local import StoreOwnedError

    hot = policy_tree.base / ".regops/store"
    owned = objects(hot)
    assert (hot / "OWNER").read_text() == "../../registry\n"
    other = tmp_path_factory.mktemp("other") / "registry"
    shutil.copytree(policy_tree.root, other)
    config = other / "regops.yaml"
    config.write_text(config.read_text().replace("path: .regops/store", f"path: {hot}"))
    with pytest.raises(
        StoreOwnedError, match=rf"^local storage at {hot} belongs to another registry \({policy_tree.root}"
    ):
        api.retention_apply(registry=other, now=LATER)
    assert objects(hot) == owned, "registry B's retention deletes nothing registry A's versions need"
    assert not (other.parent / ".regops/cold").exists(), "refused before anything was copied"
    assert "tier: hot" in (other / "models/sentiment/1.4.0-rc.2.yaml").read_text()
    # Its own registry still moves what its policy says.
    api.retention_apply(registry=policy_tree.root, now=LATER)
    assert Registry.load(policy_tree.root).version("sentiment", "1.4.0-rc.2").storage["tier"] == "cold"


def test_a_hot_copy_whose_cold_copy_is_gone_is_kept(policy_tree: Tree) -> None:
    record = recorded_not_finished(policy_tree)
    weights = next(a for a in artifacts_of(record) if a.path == "model.safetensors")
    cold = policy_tree.base / ".regops/cold/sha256" / weights.sha256[:2] / weights.sha256[2:4] / weights.sha256
    cold.unlink()
    hot = objects(policy_tree.base / ".regops/store")
    with pytest.raises(
        RegopsError,
        match=r"^sentiment@1.4.0-rc.2: model.safetensors not in local cold storage at .*\.regops/cold, where its "
        r"version file says its weights are; its hot copy is kept \(nothing removed\)",
    ):
        api.retention_apply(registry=policy_tree.root, now=LATER)
    assert objects(policy_tree.base / ".regops/store") == hot


def _every_walk(parents: dict[str, str | None], kept: dict[str, str]) -> None:
    """The plain rule the plan's ancestor walk must give: from each kept version, in order, up its whole line."""
    for ref in list(kept):
        seen, child = {ref}, ref
        while (parent := parents.get(child)) is not None and parent in parents and parent not in seen:
            seen.add(parent)
            kept.setdefault(parent, f"ancestor of {ref} (kept hot)")
            child = parent


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(-2, 11), min_size=1, max_size=12),
    st.lists(st.tuples(st.integers(0, 11), st.sampled_from(["current prod", "former prod"])), max_size=8),
)
def test_each_line_walked_once_keeps_what_walking_from_every_kept_version_keeps(
    parent_of: list[int], kept_ones: list[tuple[int, str]]
) -> None:
    # Versions v0..vN across models, each pointing at another (cycles and self-parents included), at none (-1) or at
    # a version no file holds (-2): the one-walk-per-line answer equals walking from every kept version.
    parents = {f"m@v{i}": None if p == -1 else "gone@v0" if p == -2 else f"m@v{p}" for i, p in enumerate(parent_of)}
    kept = {f"m@v{i}": why for i, why in kept_ones if i < len(parent_of)}
    expected = dict(kept)
    _every_walk(parents, expected)
    _keep_ancestors(parents, kept)
    assert kept == expected
    assert list(kept) == list(expected)


def test_the_published_record_is_read_from_the_checkout_only_for_a_folder_holding_exactly_the_refs_files(
    tmp_path: Path,
) -> None:
    # Anything else in the folder (a file git does not track, a change git sees) or another tree at the ref: the
    # folder is read from git, as the ref has it.
    repo = registry_repo(tmp_path)
    git(repo, "update-index", "--refresh")  # a copied repository: git's index has the template's stat data
    folder = repo / "registry" / "models" / "sentiment"
    model_yaml = (folder / "model.yaml").read_text()

    def same(ref: str = "HEAD") -> set[str]:
        return _as_published(Registry.load(repo / "registry"), ref)

    assert same() == {"sentiment"}
    (folder / "1.0.0.yaml").write_text("untracked: true\n")
    assert same() == set()
    (folder / "1.0.0.yaml").unlink()
    (folder / "model.yaml").write_text(model_yaml + "# edited\n")
    assert same() == set()
    commit(repo, "an edit")
    assert same() == {"sentiment"}
    assert same("HEAD~1") == set()
