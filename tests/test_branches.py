"""The branch of a pull request regops opens (``promote --pr``, ``rollback --pr``, ``register --pr``, the canary's).

regops makes its change on a branch it creates and pushes it with a plain push, so
the pull request carries regops' commit and nothing else: a branch of the same
name that exists already (someone else's, or one a failed run left) is never
built on. Anything failing on the way leaves the checkout as it was and no
branch behind, so the next run is not blocked. Real git (a bare ``origin``,
clones), the local GitHub server.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from regops.cli import main
from tests.conftest import commit, git
from tests.servers.github_fixtures import GitHubFixture
from tests.test_canary_check import check as canary_check
from tests.test_canary_check import metrics_document, stage_canary
from tests.test_github import REPO, sha, with_origin

BRANCH = "regops/promote-sentiment-1.1.0-staging"
PROMOTE = ["promote", "sentiment@1.1.0", "--to", "staging", "--notes", "ready", "--by", "alice", "--pr"]


def push_as_mallory(origin: Path, tmp_path: Path, branch: str) -> str:
    """mallory's clone pushes ``branch`` with a commit of hers (one approval fewer for prod); its head."""
    clone = tmp_path / "mallory"
    git(tmp_path, "clone", "-q", "-b", "main", str(origin), str(clone))
    git(clone, "config", "user.name", "mallory")
    git(clone, "config", "user.email", "mallory@example.com")
    config = clone / "registry/regops.yaml"
    config.write_text(config.read_text() + "# mallory was here\n")
    commit(clone, "nothing to see")
    git(clone, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
    return sha(clone)


def local_branches(repo: Path) -> list[str]:
    return git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/regops/").split()


def registry_files(repo: Path) -> dict[str, bytes]:
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in sorted((repo / "registry").rglob("*.yaml"))}


def assert_as_it_was(repo: Path, before: dict[str, bytes]) -> None:
    """On main, nothing uncommitted, the registry's files as they were, no branch of regops' left."""
    assert git(repo, "symbolic-ref", "--short", "HEAD").strip() == "main"
    assert git(repo, "status", "--porcelain") == ""
    assert registry_files(repo) == before
    assert local_branches(repo) == []


def pull_commits(origin: Path, number: int, gh: GitHubFixture) -> tuple[str, list[str], str]:
    """The pull request's head branch, the commits it has on origin beyond main, and its head's parent."""
    pull = gh.client().get_repo(REPO).get_pull(number)
    ahead = git(origin, "rev-list", f"main..{pull.head.ref}").split()
    assert ahead[:1] == [pull.head.sha], "GitHub and origin agree on the head"
    return pull.head.ref, ahead, git(origin, "rev-parse", f"{pull.head.sha}^").strip()


@pytest.mark.parametrize("squatted", [BRANCH, f"{BRANCH}/x"], ids=["same-name", "a-folder-of-it"])
def test_a_branch_someone_else_pushed_first_is_never_built_on(
    history_repo: Path, gh: GitHubFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str], squatted: str
) -> None:
    origin = with_origin(history_repo, gh)
    theirs = push_as_mallory(origin, tmp_path, squatted)
    assert main(PROMOTE) == 0, capsys.readouterr()
    assert "opened pull request #1: " in capsys.readouterr().out

    head, ahead, parent = pull_commits(origin, 1, gh)
    assert head == f"{BRANCH}-2", "a name of its own"
    assert parent == sha(origin, "main"), "built on main, not on mallory's commit"
    assert len(ahead) == 1
    assert git(origin, "log", "-1", "--format=%an", head).strip() == "Alice Example"
    assert git(origin, "diff", "--name-only", "main", head).split() == ["registry/models/sentiment/1.1.0.yaml"]
    assert sha(origin, squatted) == theirs, "mallory's branch untouched"


def test_a_branch_left_in_the_checkout_does_not_block_the_pull_request(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = with_origin(history_repo, gh)
    git(history_repo, "branch", BRANCH, "main~1")  # left by an older regops whose push failed
    left = sha(history_repo, BRANCH)
    assert main(PROMOTE) == 0, capsys.readouterr()
    capsys.readouterr()
    head, ahead, parent = pull_commits(origin, 1, gh)
    assert (head, len(ahead), parent) == (f"{BRANCH}-2", 1, sha(origin, "main"))
    assert sha(history_repo, BRANCH) == left


def test_a_rejected_push_deletes_the_branch_and_the_next_run_opens_the_pull_request(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = with_origin(history_repo, gh)
    hook = origin / "hooks/pre-receive"
    hook.write_text("#!/bin/sh\necho 'pushes are frozen' >&2\nexit 1\n")
    hook.chmod(0o755)
    before = registry_files(history_repo)

    assert main(PROMOTE) == 1
    err = capsys.readouterr().err
    assert f"could not push branch {BRANCH} to origin" in err
    assert "pushes are frozen" in err
    assert f"nothing was pushed: regops deleted its branch {BRANCH} and returned to main" in err
    assert "run the same command again" in err
    assert_as_it_was(history_repo, before)
    assert git(origin, "branch", "--list", "regops/*") == ""
    assert gh.client().get_repo(REPO).get_pulls(state="all").totalCount == 0

    hook.unlink()
    assert main(PROMOTE) == 0, capsys.readouterr()
    assert "opened pull request #1: " in capsys.readouterr().out
    assert pull_commits(origin, 1, gh)[0] == BRANCH, "the name was free again"


def test_a_change_that_fails_on_the_branch_leaves_no_branch_and_no_edit(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = with_origin(history_repo, gh)
    before = registry_files(history_repo)
    # The promotion is refused: nothing was written.
    assert main([*PROMOTE[:3], "prod", *PROMOTE[4:]]) == 1
    assert "sentiment@1.1.0" in capsys.readouterr().err
    assert_as_it_was(history_repo, before)
    # The promotion is written, the commit refused by a hook of the checkout's: the edit is thrown away.
    hook = history_repo / ".git/hooks/pre-commit"
    hook.write_text("#!/bin/sh\necho 'commits need a ticket' >&2\nexit 1\n")
    hook.chmod(0o755)
    assert main(PROMOTE) == 1
    assert "commits need a ticket" in capsys.readouterr().err
    assert_as_it_was(history_repo, before)
    assert git(origin, "branch", "--list", "regops/*") == ""


def test_a_pull_request_github_refuses_leaves_the_pushed_branch_and_the_retry_works(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = with_origin(history_repo, gh)
    before = registry_files(history_repo)
    monkeypatch.setenv("GITHUB_TOKEN", gh.mallory_token)  # read access only: the pull request cannot be opened
    assert main(PROMOTE) == 1
    err = capsys.readouterr().err
    assert f"the change is pushed as branch {BRANCH} of origin: open the pull request from it" in err
    assert f"`git push origin --delete {BRANCH}`" in err
    assert_as_it_was(history_repo, before)
    assert git(origin, "rev-list", f"main..{BRANCH}").split() != []

    monkeypatch.setenv("GITHUB_TOKEN", gh.app_token)
    assert main(PROMOTE) == 0, capsys.readouterr()
    capsys.readouterr()
    head, ahead, parent = pull_commits(origin, 1, gh)
    assert (head, len(ahead), parent) == (f"{BRANCH}-2", 1, sha(origin, "main"))


def test_a_detached_head_is_refused_before_any_branch_exists(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with_origin(history_repo, gh)
    git(history_repo, "checkout", "-q", "--detach")
    assert main(PROMOTE) == 1
    assert "has no branch checked out (a detached HEAD): check out the branch" in capsys.readouterr().err
    assert local_branches(history_repo) == []
    assert git(history_repo, "status", "--porcelain") == ""


def canary_pr(capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """canary.yml's PR step: its exit code and what it said."""
    code = main(["canary", "pr"])
    out, err = capsys.readouterr()
    return code, (out + err).strip()


def test_the_canary_refuses_a_branch_it_did_not_make_and_opens_its_pull_request_once_it_is_gone(
    history_repo: Path, gh: GitHubFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stage_canary(history_repo, capsys, "{provider: json, path: metrics.json}")
    (history_repo / "metrics.json").write_text(json.dumps(metrics_document(canary_errors=2)))
    commit(history_repo, "metrics")
    origin = with_origin(history_repo, gh)
    branch = "regops/canary-sentiment-1.1.0-prod"
    theirs = push_as_mallory(origin, tmp_path, branch)

    canary_check(capsys)
    code, out = canary_pr(capsys)
    assert code == 1, out
    assert f"branch {branch} already exists on origin, and a pull request from it would carry commits" in out
    assert f"`git push origin --delete {branch}`" in out
    assert gh.client().get_repo(REPO).get_pulls(state="all").totalCount == 0
    assert sha(origin, branch) == theirs
    assert local_branches(history_repo) == []
    assert git(history_repo, "status", "--porcelain") == ""

    subprocess.run(["git", "push", "-q", "origin", "--delete", branch], cwd=history_repo, check=True)
    code, out = canary_pr(capsys)
    assert code == 0, out
    assert "pull request: opened #1" in out
    head, ahead, parent = pull_commits(origin, 1, gh)
    assert (head, len(ahead), parent) == (branch, 1, sha(origin, "main"))
