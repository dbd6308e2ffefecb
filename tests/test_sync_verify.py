"""Sync verifies a version's files at its commit before it points a tag, a stage branch or serving.json there.

The attacker here holds a leaked Hub write token (they push commits and move
refs), or got a version file's ``artifacts.storage.revision`` changed. Either
way the bytes at the commit the record names are not the bytes it hashes:
sync must leave every ref where it was for that version, say which file
differs with both hashes, exit 1, and still sync every other version.
Everything goes through the real ``huggingface_hub`` client to the local Hub
server.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from regops.registry import Registry
from tests import test_act
from tests.conftest import commit
from tests.pr_fixtures import templated
from tests.test_hub import HOT, regops

# The weights helper writes 1_280_000 bytes of weights and a config.json such as {"seed": "1.0.0"}.
EVIL_WEIGHTS = b"\x66" * 1_280_000


@pytest.fixture
def hub_history_repo(
    hub_env: HfApi, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """What the tests start from: sentiment 1.0.0 in prod, 1.1.0 in dev, on the Hub (tagged), never synced.
    tests/test_act.py's fixture of that name, built once per process; each test gets a copy (the Hub's with it)."""
    build = test_act.hub_history_repo.__wrapped__  # the fixture's own function (pytest refuses a direct call)
    templated("hub-history", tmp_path, lambda: build(hub_env, tmp_path, capsys, monkeypatch) and None)
    monkeypatch.chdir(tmp_path / "models-repo")
    return tmp_path / "models-repo"


def storage(repo: Path, version: str) -> dict[str, str]:
    return Registry.load(repo / "registry").version("sentiment", version).storage


def hub_refs(api: HfApi) -> tuple[dict[str, str], dict[str, str]]:
    refs = api.list_repo_refs(HOT)
    return {b.name: b.target_commit for b in refs.branches}, {t.name: t.target_commit for t in refs.tags}


def served(repo: Path) -> dict[str, object] | None:
    manifest = json.loads((repo / "serving.json").read_text())
    prod: dict[str, object] | None = manifest["models"]["sentiment"]["prod"]
    return prod


def pushed_on(api: HfApi, base: str, **files: bytes) -> str:
    """A commit on top of ``base`` with ``files`` changed, pushed with the leaked token (its branch removed)."""
    api.create_branch(HOT, branch="attack", revision=base)
    for path, data in files.items():
        api.upload_file(path_or_fileobj=data, path_in_repo=path, repo_id=HOT, revision="attack")
    bad = {b.name: b.target_commit for b in api.list_repo_refs(HOT).branches}["attack"]
    api.delete_branch(HOT, branch="attack")
    return bad


def recorded(repo: Path, version: str, path: str) -> str:
    files = Registry.load(repo).version("sentiment", version).raw["artifacts"]["files"]
    return next(str(f["sha256"]) for f in files if f["path"] == path)


def another_versions_commit(api: HfApi, repo: Path) -> tuple[str, str, str]:
    return storage(repo, "1.1.0")["revision"], "model.safetensors", recorded(repo, "1.1.0", "model.safetensors")


def other_weights(api: HfApi, repo: Path) -> tuple[str, str, str]:
    bad = pushed_on(api, storage(repo, "1.0.0")["revision"], **{"model.safetensors": EVIL_WEIGHTS})
    return bad, "model.safetensors", hashlib.sha256(EVIL_WEIGHTS).hexdigest()


def other_config_same_size(api: HfApi, repo: Path) -> tuple[str, str, str]:
    # config.json is a regular git file on the Hub (no LFS sha256 in the tree): its bytes must be hashed.
    config = b'{"seed": "6.6.6"}'
    return (
        pushed_on(api, storage(repo, "1.0.0")["revision"], **{"config.json": config}),
        "config.json",
        hashlib.sha256(config).hexdigest(),
    )


BadCommit = Callable[[HfApi, Path], tuple[str, str, str]]


def point_at(repo: Path, version: str, revision: str) -> str:
    """Change the version file's recorded commit (the change a PR could make) and commit it; the old commit."""
    path = repo / "registry" / "models" / "sentiment" / f"{version}.yaml"
    old = storage(repo, version)["revision"]
    path.write_text(path.read_text().replace(old, revision))
    commit(repo, f"point {version} at {revision[:12]}")
    return old


@pytest.mark.parametrize("bad_commit", [another_versions_commit, other_weights, other_config_same_size])
def test_sync_points_nothing_at_a_commit_whose_files_differ_and_syncs_the_rest(
    hub_history_repo: Path, hub_env: HfApi, capsys: pytest.CaptureFixture[str], bad_commit: BadCommit
) -> None:
    repo, api = hub_history_repo, hub_env
    bad, path, found = bad_commit(api, repo)
    expected = recorded(repo, "1.0.0", path)
    good = point_at(repo, "1.0.0", bad)
    record_before = (repo / "registry/models/sentiment/1.0.0.yaml").read_bytes()

    out = regops(capsys, repo, "sync", code=1)

    branches, tags = hub_refs(api)
    assert "prod" not in branches, "no prod branch onto bytes the record does not name"
    assert tags["v1.0.0"] == good, "the tag stays on the commit whose files match"
    assert branches["dev"] == storage(repo, "1.1.0")["revision"], "the verified version got its branch in the same run"
    assert served(repo) is None, "serving.json does not name the unverified commit"
    assert (repo / "registry/models/sentiment/1.0.0.yaml").read_bytes() == record_before
    assert f"{path} of sentiment@1.0.0 has sha256 {found}, the version file says {expected}" in out
    assert f"acme-ml/sentiment: branch prod not moved to {bad[:12]} (sentiment@1.0.0)" in out
    assert f"acme-ml/sentiment: tag v1.0.0 not moved to {bad[:12]} (sentiment@1.0.0)" in out

    check = regops(capsys, repo, "sync", "--check", code=1)
    assert f"{path} of sentiment@1.0.0 has sha256" in check
    assert hub_refs(api) == (branches, tags), "--check moves nothing"


def synced(capsys: pytest.CaptureFixture[str], repo: Path, api: HfApi) -> str:
    """Sync once, as after the merge; the commit prod is on (1.0.0's)."""
    regops(capsys, repo, "sync")
    good = storage(repo, "1.0.0")["revision"]
    assert hub_refs(api)[0]["prod"] == good
    return good


def test_a_synced_prod_stays_on_its_verified_commit_when_the_record_is_repointed(
    hub_history_repo: Path, hub_env: HfApi, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, api = hub_history_repo, hub_env
    good = synced(capsys, repo, api)
    # The record's files, plus one more (code a loader could run): the commit holds bytes the record does not name.
    bad = pushed_on(api, good, **{"extra.py": b"import os\n"})
    point_at(repo, "1.0.0", bad)
    refs_before, manifest_before = hub_refs(api), (repo / "serving.json").read_bytes()

    out = regops(capsys, repo, "sync", code=1)

    assert hub_refs(api) == refs_before, "no tag or branch moved, and the card naming prod's commit not rewritten"
    assert (repo / "serving.json").read_bytes() == manifest_before, "serving.json still names the verified commit"
    assert (
        f"acme-ml/sentiment@{bad[:12]}: extra.py of sentiment@1.0.0 is in the commit but not in the version file" in out
    )
    assert f"acme-ml/sentiment: branch prod not moved to {bad[:12]} (sentiment@1.0.0)" in out
    assert "serving.json: sentiment not moved to sentiment@1.0.0: its files on the Hub do not match" in out
    assert (
        "model card README.md differs from the registry (edited by hand, or stale); not updated: it would name " in out
    )

    point_at(repo, "1.0.0", good)  # the change reverted
    assert regops(capsys, repo, "sync").startswith("in sync: nothing to change")


def test_refs_moved_by_hand_with_a_leaked_token_go_back_onto_the_verified_commit(
    hub_history_repo: Path, hub_env: HfApi, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, api = hub_history_repo, hub_env
    good = synced(capsys, repo, api)
    bad = pushed_on(api, good, **{"model.safetensors": EVIL_WEIGHTS})
    api.delete_branch(HOT, branch="prod")
    api.create_branch(HOT, branch="prod", revision=bad)
    api.delete_tag(HOT, tag="v1.0.0")
    api.create_tag(HOT, tag="v1.0.0", revision=bad)

    check = regops(capsys, repo, "sync", "--check", code=1)
    assert f"acme-ml/sentiment: branch prod points at {bad[:12]}, expected {good[:12]} (sentiment@1.0.0)" in check
    assert f"acme-ml/sentiment: tag v1.0.0 points at {bad[:12]}, expected {good[:12]}" in check

    regops(capsys, repo, "sync")
    branches, tags = hub_refs(api)
    assert (branches["prod"], tags["v1.0.0"]) == (good, good)
    assert served(repo) == {
        "version": "1.0.0",
        "storage": {"backend": "hf", "repo": HOT, "revision": good},
        "files": Registry.load(repo).version("sentiment", "1.0.0").raw["artifacts"]["files"],
    }
