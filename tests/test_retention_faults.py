"""Retention on the Hub as registry-sync runs it — ``retention apply``, ``commit --push``, ``retention apply`` —
killed after each step of the move (copy, verify, record, push, delete), the runner's working tree thrown away.

What main says is all that survives a lost runner: after every fault, every version on main is retrievable,
byte for byte, from where main says it is, and the next run (a fresh clone) finishes the move. Faults are real:
the local Hub server fails requests, a version file cannot be written, origin's pre-receive hook refuses the push.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from regops import api
from regops.cli import main
from regops.errors import RegopsError
from regops.registry import Registry
from regops.retention import artifacts_of
from regops.weights import download
from tests.conftest import DATA, commit, git, registry_repo, weights
from tests.pr_fixtures import templated
from tests.servers.hub import HubServer
from tests.test_hub import ARCHIVE, HOT, hf_repo
from tests.test_hub_faults import LATER, register

VERSIONS = ("1.0.0", "1.1.0")  # two candidates nothing descends from: retention moves both
LOCAL_CONFIG = (DATA / "registry/regops.yaml").read_text() + (
    "cold_storage: {backend: local, path: .regops/cold}\nretention: {keep_prod: 0, candidate_ttl_days: 7}\n"
)


@dataclass
class Setup:
    origin: Path
    blobs: dict[str, bytes]  # version -> its model.safetensors
    archive_head: str  # the archive repo's main before retention


@pytest.fixture
def setup(hub_env: HfApi, tmp_path: Path) -> Setup:
    """origin (bare) with two registered candidates on main; the archive repo exists (one commit, no weights).
    Built once per process, copied (the Hub's repositories with it) for each test."""
    blobs, head = templated("retention-faults", tmp_path, lambda: _two_candidates_on_origin(hub_env, tmp_path))
    return Setup(tmp_path / "origin.git", blobs, head)


def _two_candidates_on_origin(hub_env: HfApi, tmp_path: Path) -> tuple[dict[str, bytes], str]:
    repo = hf_repo(tmp_path)
    blobs = {v: (register(repo, tmp_path, v) / "model.safetensors").read_bytes() for v in VERSIONS}
    commit(repo, "register")
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "-u", "origin", "main")
    hub_env.create_repo(ARCHIVE, private=True)
    hub_env.upload_file(path_or_fileobj=b"archive\n", path_in_repo="README.md", repo_id=ARCHIVE)
    head = next(b.target_commit for b in hub_env.list_repo_refs(ARCHIVE).branches if b.name == "main")
    return blobs, head


def runner(setup: Setup, tmp_path: Path, name: str) -> Path:
    """A fresh checkout of origin's main, as a new workflow run gets it."""
    clone = tmp_path / name
    git(tmp_path, "clone", "-q", str(setup.origin), str(clone))
    with (clone / ".git" / "config").open("a") as config:  # as `git config user.name/user.email` writes them
        config.write("[user]\n\tname = registry-bot\n\temail = bot@example.com\n")
    return clone


def sync_job(clone: Path) -> None:
    """registry-sync.yml's retention steps."""
    api.retention_apply(registry=clone / "registry", now=LATER)
    api.commit(registry=clone / "registry", message="retention", push=True)
    api.retention_apply(registry=clone / "registry", now=LATER)


def hot_objects(hub: HfApi) -> set[str]:
    return {f.file_oid for f in hub.list_lfs_files(HOT)}


def retrievable_from_main(setup: Setup, tmp_path: Path) -> dict[str, str]:
    """Fetch every version on origin's main from where main says its weights are, verified; version -> tier."""
    main = runner(setup, tmp_path, f"check-{len(list(tmp_path.glob('check-*')))}")
    registry = Registry.load(main / "registry")
    tiers = {}
    for version in VERSIONS:
        record = registry.version("sentiment", version)
        dest = main.parent / f"{main.name}-{version}"
        if record.storage["tier"] == "hot":
            api.download(f"sentiment@{version}", registry=main / "registry", dest=dest)  # `regops download`
        else:  # cold: `regops download` asks for a restore first; fetch (and verify) where the record says
            download(api.open_storage(registry), artifacts_of(record), record.storage, dest, ref=record.ref)
        assert (dest / "model.safetensors").read_bytes() == setup.blobs[version]
        tiers[version] = record.storage["tier"]
    return tiers


def refuse_pushes(setup: Setup) -> None:
    hook = setup.origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is frozen' >&2\nexit 1\n")
    hook.chmod(0o755)


def unwritable_records(clone: Path) -> None:
    """A folder where the write of each version file's temporary copy goes: recording the move fails."""
    for version in VERSIONS:
        (clone / f"registry/models/sentiment/.{version}.yaml.{os.getpid()}.tmp").mkdir()


def fail(method: str, path: str, code: int = 503) -> Callable[[Setup, Path, HubServer], None]:
    def arm(setup: Setup, clone: Path, hub: HubServer) -> None:
        hub.faults.add(method, path.format(head=setup.archive_head), "status", code=code, times=100)

    return arm


FAULTS: dict[str, tuple[Callable[[Setup, Path, HubServer], None], str]] = {
    # step the run dies in: (the fault, the state main is left in)
    "copy": (fail("POST", rf"/api/models/{ARCHIVE}/commit/"), "hot"),
    # The copy's listing (not main's, before the commit) is not found: the copy cannot be verified.
    "verify": (fail("GET", rf"/api/models/{ARCHIVE}/tree/(?!{{head}})", code=404), "hot"),
    "record": (lambda s, clone, h: unwritable_records(clone), "hot"),
    "push": (lambda s, clone, h: refuse_pushes(s), "hot"),
    "delete": (fail("POST", rf"/api/models/{HOT}/lfs-files/batch"), "cold"),
}


@pytest.mark.parametrize("step", list(FAULTS))
def test_retention_killed_at_each_step_loses_no_version_and_the_next_run_finishes(
    hub_env: HfApi, hub_server: HubServer, setup: Setup, tmp_path: Path, step: str
) -> None:
    arm, left = FAULTS[step]
    first = runner(setup, tmp_path, "run-1")
    arm(setup, first, hub_server)
    with pytest.raises((RegopsError, OSError)):  # the run dies: an error regops reports, or one it does not
        sync_job(first)
    hub_server.faults.clear()
    copied = {t.name for t in hub_env.list_repo_refs(ARCHIVE).tags}  # a version's archive commit, tagged
    assert bool(copied) == (step != "copy"), "the run died after its copy reached the archive"
    wanted = {hashlib.sha256(b).hexdigest() for b in setup.blobs.values()}
    (setup.origin / "hooks" / "pre-receive").unlink(missing_ok=True)
    git(first, "checkout", "--", ".")  # the runner is gone: its working tree with it
    git(first, "clean", "-fdxq")

    assert retrievable_from_main(setup, tmp_path) == dict.fromkeys(VERSIONS, left)
    assert wanted <= hot_objects(hub_env), "no hot copy goes before main records the move"

    sync_job(runner(setup, tmp_path, "run-2"))
    assert retrievable_from_main(setup, tmp_path) == dict.fromkeys(VERSIONS, "cold")
    assert not wanted & hot_objects(hub_env), "the next run finished the move"
    assert wanted <= {f.file_oid for f in hub_env.list_lfs_files(ARCHIVE)}


@pytest.mark.parametrize("lost", ["after recording", "after pushing"])
def test_a_runner_lost_between_steps_leaves_main_retrievable_and_the_next_run_finishes(
    hub_env: HfApi, setup: Setup, tmp_path: Path, lost: str
) -> None:
    first = runner(setup, tmp_path, "run-1")
    api.retention_apply(registry=first / "registry", now=LATER)
    if lost == "after pushing":
        api.commit(registry=first / "registry", message="retention", push=True)
    # The runner dies here: nothing more of it runs, its working tree is gone.
    wanted = {hashlib.sha256(b).hexdigest() for b in setup.blobs.values()}
    assert wanted <= hot_objects(hub_env), "recorded in the working tree only, or just pushed: the hot copy stays"
    left = "cold" if lost == "after pushing" else "hot"
    assert retrievable_from_main(setup, tmp_path) == dict.fromkeys(VERSIONS, left)

    second = runner(setup, tmp_path, "run-2")
    plan = {d.ref: d.action for d in api.retention_plan(registry=second / "registry", now=LATER)}
    assert set(plan.values()) == ({"finish"} if lost == "after pushing" else {"move"})
    sync_job(second)
    assert retrievable_from_main(setup, tmp_path) == dict.fromkeys(VERSIONS, "cold")
    assert not wanted & hot_objects(hub_env)


# --- identical bytes: two files of one version, two versions -------------------------------------------------


def identical_outputs(tmp_path: Path) -> None:
    """1.0.0 and 1.1.0 with the same bytes, each with one config.json in two folders."""
    out = tmp_path / "out-1.0.0"
    weights(out, "same")
    for folder in ("a", "b"):
        (out / folder).mkdir()
        (out / folder / "config.json").write_text('{"labels": 3}\n')
    shutil.copytree(out, tmp_path / "out-1.1.0")


@pytest.mark.parametrize("backend", ["hf", "local"])
def test_identical_files_move_and_restore_and_a_version_sharing_bytes_keeps_its_hot_copy(
    hub_env: HfApi, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    repo = hf_repo(tmp_path) if backend == "hf" else registry_repo(tmp_path, LOCAL_CONFIG)
    monkeypatch.chdir(repo)
    identical_outputs(tmp_path)
    for version in VERSIONS:
        register(repo, tmp_path, version)
    commit(repo, "register")
    api.auto_promote(registry=repo / "registry", by="github-actions[bot]")
    commit(repo, "auto-promote")
    registry = Registry.load(repo / "registry")
    kept = next(r for r in registry.versions("sentiment") if r.stage == "dev")
    moved = next(r for r in registry.versions("sentiment") if r.stage != "dev")
    shas = {a.sha256 for a in artifacts_of(kept)}
    assert len(shas) == len(artifacts_of(kept)) - 1, "two files of each version have identical bytes"

    for _ in range(2):  # record, publish (commit: no remote here), remove
        assert main(["retention", "apply", "--at", LATER]) == 0, capsys.readouterr().err
        commit(repo, "retention")
    registry = Registry.load(repo / "registry")
    assert registry.version("sentiment", moved.version).storage["tier"] == "cold"
    storage = api.open_storage(registry)
    assert storage.missing(artifacts_of(moved), registry.version("sentiment", moved.version).storage) == []
    assert storage.missing(artifacts_of(kept), kept.storage) == [], f"{kept.ref} keeps its hot objects"
    blob = next(a.sha256 for a in artifacts_of(kept) if a.path == "model.safetensors")
    if backend == "hf":  # the weights' LFS object, which the two versions share, stays in the hot repo
        assert blob in hot_objects(hub_env) and blob in {f.file_oid for f in hub_env.list_lfs_files(ARCHIVE)}
    else:
        assert (repo / ".regops/store/sha256" / blob[:2] / blob[2:4] / blob).is_file()
    assert main(["restore", moved.ref]) == 0, capsys.readouterr().err
    restored = Registry.load(repo / "registry").version("sentiment", moved.version).storage
    assert restored["tier"] == "hot" and storage.missing(artifacts_of(moved), restored) == []
