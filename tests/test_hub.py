"""The Hub backend end to end: register, promote, sync, retention and restore against the local Hub server.

Every call goes through the real ``huggingface_hub`` client over HTTP to
``tests/servers/hub.py`` (real bare git repositories, the LFS batch protocol).
What the test checks it reads back through the same client, as a user would.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from huggingface_hub import HfApi, ModelCard

from regops.registry import Registry
from tests.conftest import git, registry_repo, run_regops, weights

HOT, ARCHIVE = "acme-ml/sentiment", "acme-ml/sentiment-archive"

HF_CONFIG = """\
# yaml-language-server: $schema=../schemas/regops.schema.json
storage: {backend: hf}
cold_storage: {backend: hf}
stages:
  dev: {from: [candidate], bots: true}
  staging: {from: [dev], approvals: 1}
  prod: {from: [staging, archived], approvals: 1, require_canary: true}
  archived: {from: [candidate, dev, staging, prod], bots: true}
bots: ["training-bot[bot]", "github-actions[bot]"]
retention: {keep_prod: 0, candidate_ttl_days: 7}
"""


def hf_repo(tmp_path: Path, config: str = HF_CONFIG) -> Path:
    return registry_repo(tmp_path, config)


def regops(capsys: pytest.CaptureFixture[str], repo: Path, *args: str, code: int = 0) -> str:
    return run_regops(capsys, repo, *args, code=code)


def register(capsys: pytest.CaptureFixture[str], repo: Path, tmp_path: Path, out: str, *extra: str) -> str:
    evals = tmp_path / f"evals-{out}.json"
    evals.write_text(
        '{"accuracy": 0.93, "latency_ms": 41}' if out.endswith("a") else '{"accuracy": 0.95, "latency_ms": 40}'
    )
    (tmp_path / "params.json").write_text('{"learning_rate": 3.0e-5, "epochs": 3}')
    return regops(
        capsys,
        repo,
        "register",
        "sentiment",
        "--artifacts",
        str(tmp_path / out),
        "--evals",
        str(evals),
        "--params",
        str(tmp_path / "params.json"),
        "--dataset",
        "reviews@2025-09-08",
        "--eval-dataset",
        "reviews-eval@v1",
        "--by",
        "training-bot[bot]",
        *extra,
    )


def to_prod(capsys: pytest.CaptureFixture[str], repo: Path, ref: str) -> None:
    regops(capsys, repo, "auto-promote", "--by", "github-actions[bot]")
    regops(capsys, repo, "promote", ref, "--to", "staging", "--notes", "ready", "--by", "alice")
    regops(capsys, repo, "canary", "record", ref, "--result", "passed")
    regops(capsys, repo, "promote", ref, "--to", "prod", "--notes", "canary held", "--by", "bob")


def card_of(api: HfApi, repo: str) -> ModelCard:
    """The model card as the Hub serves it, parsed by the client (model-index included)."""
    return ModelCard(Path(api.hf_hub_download(repo, "README.md")).read_text(encoding="utf-8"))


def test_register_promote_sync_drift_retention_restore_on_the_hub(  # noqa: PLR0915 - one story, top to bottom
    hub_env: HfApi, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = hf_repo(tmp_path)
    monkeypatch.chdir(repo)
    api = hub_env
    first = weights(tmp_path / "out-a", "1.0.0")
    weights(tmp_path / "out-b", "1.1.0")

    # 1.0.0: registered (one commit on the Hub, tagged), promoted to prod, synced.
    out = register(capsys, repo, tmp_path, "out-a", "--version", "1.0.0")
    assert "2 files uploaded" in out
    v1 = Registry.load(repo / "registry").version("sentiment", "1.0.0").storage
    assert v1["backend"] == "hf" and v1["repo"] == HOT and v1["tier"] == "hot" and len(v1["revision"]) == 40
    refs = api.list_repo_refs(HOT)
    assert {t.name: t.target_commit for t in refs.tags} == {"v1.0.0": v1["revision"]}
    assert api.model_info(HOT).private is True
    files = {f.path: f for f in api.list_repo_tree(HOT, revision=v1["revision"])}
    assert files["model.safetensors"].lfs.sha256 == hashlib.sha256(first).hexdigest()

    to_prod(capsys, repo, "sentiment@1.0.0")
    out = regops(capsys, repo, "sync")
    assert "fixed: acme-ml/sentiment: branch prod missing" in out
    assert "fixed: acme-ml/sentiment: model card README.md missing" in out
    assert "fixed: serving.json: the serving manifest is missing" in out
    branches = {b.name: b.target_commit for b in api.list_repo_refs(HOT).branches}
    assert branches["prod"] == v1["revision"] and "staging" not in branches and "dev" not in branches
    card = card_of(api, HOT)
    assert card.data.eval_results is not None
    assert {(r.metric_type, r.metric_value) for r in card.data.eval_results} == {("accuracy", 0.93), ("latency_ms", 41)}
    assert "| prod | 1.0.0 |" in card.text
    manifest = json.loads((repo / "serving.json").read_text())
    assert manifest["models"]["sentiment"]["prod"]["storage"] == {
        "backend": "hf",
        "repo": HOT,
        "revision": v1["revision"],
    }

    # 1.1.0-rc.1 reaches prod; sync moves the prod branch and says what it changed; a second sync changes nothing.
    register(capsys, repo, tmp_path, "out-b", "--bump", "minor")
    to_prod(capsys, repo, "sentiment@1.1.0-rc.1")
    v2 = Registry.load(repo / "registry").version("sentiment", "1.1.0-rc.1").storage
    assert v2["revision"] != v1["revision"]
    out = regops(capsys, repo, "sync")
    assert (
        f"fixed: acme-ml/sentiment: branch prod points at {v1['revision'][:12]}, expected {v2['revision'][:12]}" in out
    )
    assert {b.name: b.target_commit for b in api.list_repo_refs(HOT).branches}["prod"] == v2["revision"]
    assert "| prod | 1.1.0-rc.1 |" in card_of(api, HOT).text
    assert regops(capsys, repo, "sync").startswith("in sync: nothing to change")
    assert git(repo, "status", "--porcelain") == ""

    # Someone moves prod back by hand on the Hub: the drift check catches it, sync puts it back.
    api.delete_branch(HOT, branch="prod")
    api.create_branch(HOT, branch="prod", revision=v1["revision"])
    out = regops(capsys, repo, "sync", "--check", code=1)
    assert f"acme-ml/sentiment: branch prod points at {v1['revision'][:12]}, expected {v2['revision'][:12]}" in out
    assert {b.name: b.target_commit for b in api.list_repo_refs(HOT).branches}["prod"] == v1["revision"], (
        "--check changes nothing"
    )
    regops(capsys, repo, "sync")
    assert {b.name: b.target_commit for b in api.list_repo_refs(HOT).branches}["prod"] == v2["revision"]
    assert regops(capsys, repo, "sync", "--check").startswith("in sync")

    # Retention (keep_prod: 0, as of 10 days on): 1.0.0 is neither prod nor an ancestor of it; its weights
    # go to the archive repo, the hot LFS objects are deleted, the version file records where they are.
    later = (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    plan = regops(capsys, repo, "retention", "plan", "--at", later)
    assert plan.splitlines()[1:3] == [
        "sentiment@1.1.0-rc.1  keep hot      current prod",
        "sentiment@1.0.0       move to cold  former prod, not among the last 0 kept (keep_prod), older than 7 days",
    ]
    assert git(repo, "status", "--porcelain") == "", "plan changes nothing"
    # The first run copies and records; the hot copy goes once the record is committed (HEAD: no remote here).
    regops(capsys, repo, "retention", "apply", "--at", later)
    assert hashlib.sha256(first).hexdigest() in {f.file_oid for f in api.list_lfs_files(HOT)}
    regops(capsys, repo, "retention", "apply", "--at", later)
    cold = Registry.load(repo / "registry").version("sentiment", "1.0.0").storage
    assert cold["repo"] == ARCHIVE and cold["tier"] == "cold"
    assert {t.name: t.target_commit for t in api.list_repo_refs(ARCHIVE).tags} == {"v1.0.0": cold["revision"]}
    hot_objects = {f.file_oid for f in api.list_lfs_files(HOT)}
    assert hashlib.sha256(first).hexdigest() not in hot_objects
    assert {f.file_oid for f in api.list_lfs_files(ARCHIVE)} == {hashlib.sha256(first).hexdigest()}
    assert "tag v1.0.0 is left from before its weights moved elsewhere" in regops(capsys, repo, "sync")

    # An archived version's weights: download says to restore; restore brings them back hot, verified.
    out = regops(capsys, repo, "download", "sentiment@1.0.0", "--dest", str(tmp_path / "back"), code=1)
    assert "sentiment@1.0.0's weights are in cold storage; run `regops restore sentiment@1.0.0` first" in out
    assert not (tmp_path / "back").exists()
    regops(capsys, repo, "restore", "sentiment@1.0.0")
    restored = Registry.load(repo / "registry").version("sentiment", "1.0.0").storage
    assert restored["repo"] == HOT and restored["tier"] == "hot"
    regops(capsys, repo, "download", "sentiment@1.0.0", "--dest", str(tmp_path / "back"))
    assert (tmp_path / "back" / "model.safetensors").read_bytes() == first
    regops(capsys, repo, "sync")
    assert {t.name: t.target_commit for t in api.list_repo_refs(HOT).tags}["v1.0.0"] == restored["revision"]
    assert regops(capsys, repo, "sync", "--check").startswith("in sync")
