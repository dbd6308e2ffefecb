"""``register --artifacts`` never stores git's metadata: not a ``.git`` folder, nothing inside one, nothing holding one.

A checkout's ``.git/config`` holds the token actions/checkout persists; stored
in the local store or uploaded to the Hub, it would leak with the weights. A
folder that merely sits in a checkout (``out/``) is fine.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from huggingface_hub import HfApi

from regops.cli import main
from tests.conftest import Tree, git, weights
from tests.servers.github_fixtures import GitHubFixture
from tests.servers.hub import HubServer
from tests.test_github import REPO, with_origin
from tests.test_hub import HOT, hf_repo

SECRET = "AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46Z2hzX3NlY3JldA=="


def checkout(tmp_path: Path) -> Path:
    """A training job's checkout: committed weights, and the token actions/checkout leaves in .git/config."""
    repo = tmp_path / "train"
    weights(repo, "1.2.0")
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    git(repo, "config", "http.https://github.com/.extraheader", SECRET)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=ci", "-c", "user.email=ci@example.com", "commit", "-q", "-m", "weights")
    return repo


def checkout_git(tmp_path: Path) -> Path:
    return tmp_path / "train/.git"


def submodule_output(tmp_path: Path) -> Path:
    """An output folder holding a submodule's checkout, whose .git is a file pointing at the git directory."""
    out = tmp_path / "out"
    weights(out, "1.2.0")
    (out / "tokenizer").mkdir()
    (out / "tokenizer/.git").write_text("gitdir: ../../train/.git/modules/tokenizer\n")
    (out / "tokenizer/vocab.txt").write_text("a\nb\n")
    return out


def bare_repository(tmp_path: Path) -> Path:
    bare = tmp_path / "models.git"
    git(tmp_path, "clone", "-q", "--bare", str(checkout(tmp_path)), str(bare))
    return bare


# Each case: the artifacts folder, and the path the message names.
CASES = {
    "is-a-git-dir": lambda t: (checkout(t) / ".git", checkout_git(t)),
    "inside-a-git-dir": lambda t: (checkout(t) / ".git/info", checkout_git(t)),
    "holds-a-git-dir": lambda t: (checkout(t), checkout_git(t)),
    "holds-a-submodule-git-file": lambda t: (submodule_output(t), t / "out/tokenizer/.git"),
    "is-a-bare-repository": lambda t: (bare_repository(t), t / "models.git"),
    "inside-a-bare-repository": lambda t: (bare_repository(t) / "refs", t / "models.git"),
}


def register_args(tmp_path: Path, artifacts: Path, *extra: str) -> list[str]:
    (tmp_path / "evals.json").write_text('{"accuracy": 0.96, "latency_ms": 40}')
    (tmp_path / "params.json").write_text('{"epochs": 3}')
    return [
        "register", "sentiment", "--artifacts", str(artifacts), "--evals", str(tmp_path / "evals.json"),
        "--params", str(tmp_path / "params.json"), "--dataset", "reviews@2025-09-08", "--version", "1.9.0",
        "--by", "training-bot[bot]", *extra,
    ]  # fmt: skip


def snapshot(base: Path) -> dict[str, bytes]:
    """Every file of the registry and of the local store (the lock aside: the refused run held it)."""
    return {
        p.relative_to(base).as_posix(): p.read_bytes()
        for folder in (base / "registry", base / ".regops")
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".regops.lock"
    }


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_git_metadata_is_refused_and_nothing_is_stored(
    tree: Tree, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    artifacts, named = CASES[case](tmp_path)
    before = snapshot(tree.base)
    assert main([*register_args(tmp_path, artifacts), "--registry", str(tree.root)]) == 1
    err = capsys.readouterr().err
    assert str(named) in err
    assert "git's metadata, whose config can hold a token" in err
    assert "Pass a folder of only the model's files (copy them to e.g. out/ and register --artifacts out/)" in err
    assert snapshot(tree.base) == before
    assert not tree.path("models/sentiment/1.9.0.yaml").exists()


def test_the_messages_say_which_of_the_three_it_is(
    tree: Tree, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = checkout(tmp_path)
    expected = {
        repo / ".git": f"{repo / '.git'} is a git directory: git's metadata",
        repo / ".git/info": f"{repo / '.git/info'} is inside git directory {repo / '.git'}: git's metadata",
        repo: f"{repo} holds {repo / '.git'}: git's metadata",
    }
    for artifacts, message in expected.items():
        assert main([*register_args(tmp_path, artifacts), "--registry", str(tree.root)]) == 1
        assert message in capsys.readouterr().err


def test_an_output_folder_inside_a_checkout_registers(
    tree: Tree, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = checkout(tmp_path)
    weights(repo / "out", "1.2.0")
    assert main([*register_args(tmp_path, repo / "out"), "--registry", str(tree.root)]) == 0, capsys.readouterr()
    text = tree.read("models/sentiment/1.9.0.yaml")
    assert "path: model.safetensors" in text and "path: config.json" in text
    assert ".git" not in text


def test_with_the_hub_backend_nothing_is_uploaded(
    hub_env: HfApi, hub_server: HubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = hf_repo(tmp_path)
    artifacts = checkout(tmp_path)
    assert main([*register_args(tmp_path, artifacts), "--registry", str(repo / "registry")]) == 1
    assert f"{artifacts} holds {artifacts / '.git'}" in capsys.readouterr().err
    assert [(r.method, r.path) for r in hub_server.requests if r.method in {"POST", "PUT"}] == []
    assert not hub_env.repo_exists(HOT)
    assert not (repo / "registry/models/sentiment/1.9.0.yaml").exists()

    # The same weights from an output folder beside the .git: uploaded, and nothing of git's with them.
    weights(artifacts / "out", "1.2.0")
    assert main([*register_args(tmp_path, artifacts / "out"), "--registry", str(repo / "registry")]) == 0
    assert sorted(hub_env.list_repo_files(HOT)) == [".gitattributes", "config.json", "model.safetensors"]


def test_register_with_pr_refuses_before_any_branch_exists(
    history_repo: Path, gh: GitHubFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = with_origin(history_repo, gh)
    artifacts = checkout(tmp_path)
    assert main(register_args(tmp_path, artifacts, "--pr")) == 1
    assert f"{artifacts} holds {artifacts / '.git'}" in capsys.readouterr().err
    assert git(history_repo, "branch", "--list", "regops/*") == ""
    assert git(origin, "branch", "--list", "regops/*") == ""
    assert git(history_repo, "status", "--porcelain") == ""
    assert gh.client().get_repo(REPO).get_pulls(state="all").totalCount == 0
