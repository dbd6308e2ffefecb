"""The approvals check, the PR comment and approval stamping, against the local GitHub server and a real git repo.

The pull request's commits are real commits of the test repository (regops
reads the base and head registries from git); GitHub holds the pull request,
its reviews, comments and statuses, and PyGithub talks to it over HTTP.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from regops.adapters.git import GitError, fetch
from regops.cli import main
from regops.registry import Registry
from tests.conftest import commit, git, run_regops, weights
from tests.servers.github import GIT_PUSH, fake_sha, push_hook
from tests.servers.github_fixtures import GitHubFixture

REPO = "acme/models"


def sha(repo: Path, ref: str = "HEAD") -> str:
    return git(repo, "rev-parse", ref).strip()


def open_pull(gh: GitHubFixture, repo: Path, *, author: str, branch: str, main: str = "main") -> int:
    """Push main (as it is at ``main``) and the branch's head to GitHub and open the pull request, as `git push` +
    the web UI would."""
    gh.add_branch(REPO, "main", sha(repo, main))
    head = sha(repo, branch)
    return gh.add_pull(
        REPO,
        title=f"Promote ({branch})",
        head_ref=branch,
        head_sha=head,
        user=author,
        commits=[{"sha": head, "author_login": author, "committer_login": author}],
    )


def check(capsys: pytest.CaptureFixture[str], *which: int | str) -> tuple[int, str]:
    """``regops pr check --pr N`` (or the options given: ``"--head-sha", sha``); exit code, and what it printed."""
    code = main(["pr", "check", *(["--pr", str(which[0])] if len(which) == 1 else map(str, which))])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture
def staging_pr(history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]) -> int:
    """alice's pull request moving sentiment 1.1.0 from dev to staging."""
    git(history_repo, "checkout", "-q", "-b", "promote-1.1.0")
    run_regops(
        capsys, history_repo, "promote", "sentiment@1.1.0", "--to", "staging", "--notes", "ready", "--by", "alice"
    )
    return open_pull(gh, history_repo, author="alice", branch="promote-1.1.0")


def test_the_check_fails_without_an_owner_approval_and_passes_with_one_on_the_head(
    history_repo: Path, gh: GitHubFixture, staging_pr: int, capsys: pytest.CaptureFixture[str]
) -> None:
    head = sha(history_repo)
    code, out = check(capsys, staging_pr)
    assert code == 1
    # sentiment's owners are alice and the @acme/ml team (alice, bob); alice wrote the PR.
    assert out.splitlines()[:3] == [
        "fail: sentiment@1.1.0 → staging: needs 1 more approval(s) from bob",
        "sentiment@1.1.0 dev -> staging: 0/1 approvals (missing)",
        "  needs 1 more from: bob",
    ]
    assert [(s["state"], s["context"], s["description"]) for s in gh.statuses(REPO, head)] == [
        ("failure", "regops/approvals", "sentiment@1.1.0 → staging: needs 1 more approval(s) from bob")
    ]

    gh.add_review(REPO, staging_pr, "alice", "COMMENTED")  # an author cannot approve on GitHub; a comment is nothing
    gh.add_review(REPO, staging_pr, "mallory", "APPROVED")
    code, out = check(capsys, staging_pr)
    assert code == 1
    assert "  mallory's approval does not count: not an owner of sentiment nor an approver for staging" in out

    gh.add_review(REPO, staging_pr, "bob", "APPROVED")
    code, out = check(capsys, staging_pr)
    assert code == 0, out
    assert out.startswith("pass: approved: sentiment@1.1.0 → staging")
    assert gh.statuses(REPO, head)[-1]["state"] == "success"


def test_a_new_commit_after_the_approval_makes_it_stale(
    history_repo: Path, gh: GitHubFixture, staging_pr: int, capsys: pytest.CaptureFixture[str]
) -> None:
    gh.add_review(REPO, staging_pr, "bob", "APPROVED")
    assert check(capsys, staging_pr)[0] == 0
    approved = sha(history_repo)
    run_regops(
        capsys, history_repo, "promote", "sentiment@1.1.0", "--to", "archived", "--notes", "oops", "--by", "alice"
    )
    gh.set_head(REPO, staging_pr, sha(history_repo))
    code, out = check(capsys, staging_pr)
    assert code == 1
    assert (
        f"  bob's approval does not count: approved {approved[:7]}, not the head commit {sha(history_repo)[:7]}: "
        "re-review after the new commits" in out
    )


def test_policy_comes_from_the_base_branch_not_the_pull_request(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """A PR that makes its author's friend an owner, and is approved by that friend, does not pass."""
    git(history_repo, "checkout", "-q", "-b", "sneaky")
    model = history_repo / "registry/models/sentiment/model.yaml"
    model.write_text(model.read_text().replace('owners: [alice, "@acme/ml"]', 'owners: [alice, mallory, "@acme/ml"]'))
    run_regops(capsys, history_repo, "promote", "sentiment@1.1.0", "--to", "staging", "--notes", "x", "--by", "alice")
    number = open_pull(gh, history_repo, author="alice", branch="sneaky")
    gh.add_review(REPO, number, "mallory", "APPROVED")
    code, out = check(capsys, number)
    assert code == 1
    assert "mallory's approval does not count: not an owner of sentiment" in out


def test_the_report_is_one_comment_updated_in_place(
    history_repo: Path, gh: GitHubFixture, staging_pr: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["pr", "report", "--pr", str(staging_pr)]) == 0
    assert capsys.readouterr().out == f"pull request #{staging_pr}: regops comment created\n"
    assert main(["pr", "report", "--pr", str(staging_pr)]) == 0
    assert capsys.readouterr().out == f"pull request #{staging_pr}: regops comment unchanged\n"
    comments = gh.comments(REPO, staging_pr)
    assert len(comments) == 1
    author, body = comments[0]
    assert author == "regops-app[bot]"
    assert "No problems." in body
    assert "## `sentiment@1.1.0`: dev → staging" in body
    assert "| **accuracy** (primary) | 0.95 | 0.93 (+0.02 ▲) |" in body

    # A later push that breaks a rule: the same comment now lists the problem.
    path = history_repo / "registry/models/sentiment/1.1.0.yaml"
    path.write_text(path.read_text().replace("accuracy: 0.95", "accuracy: 0.99"))
    commit(history_repo, "edit evals")
    gh.set_head(REPO, staging_pr, sha(history_repo))
    assert main(["pr", "report", "--pr", str(staging_pr)]) == 0
    assert capsys.readouterr().out == f"pull request #{staging_pr}: regops comment updated\n"
    comments = gh.comments(REPO, staging_pr)
    assert len(comments) == 1
    assert "evals: evals is fixed at registration and differs from main" in comments[0][1]


def test_stamping_records_the_merged_pr_and_its_approver(
    history_repo: Path, gh: GitHubFixture, staging_pr: int, capsys: pytest.CaptureFixture[str]
) -> None:
    gh.add_review(REPO, staging_pr, "bob", "APPROVED")
    git(history_repo, "checkout", "-q", "main")
    git(history_repo, "merge", "-q", "--no-ff", "-m", f"Merge pull request #{staging_pr}", "promote-1.1.0")
    gh.merge(REPO, staging_pr, sha(history_repo))

    out = run_regops(capsys, history_repo, "pr", "stamp")
    assert f"sentiment@1.1.0: transition 1 approved in #{staging_pr} by bob" in out
    step = Registry.load(history_repo / "registry").version("sentiment", "1.1.0").steps[-1]
    assert (step.to, step.by, step.pr, step.approved_by) == ("staging", "alice", staging_pr, ("bob",))
    assert main(["validate", "--base", "HEAD^"]) == 0, "stamping is the one edit a recorded transition allows"
    capsys.readouterr()
    assert "no transitions to stamp" in run_regops(capsys, history_repo, "pr", "stamp", "--since", "HEAD")


# main's commit -> a bare origin that main was pushed to (kept outside any test's folder), and what its hook told
# GitHub of the push; kept the second time a process asks for an origin of that commit (a template's main).
_ORIGINS: dict[str, tuple[Path, bytes]] = {}
_SEEN: set[str] = set()


def with_origin(repo: Path, gh: GitHubFixture) -> Path:
    """A bare ``origin`` for the repository whose pushes GitHub (the local server) learns of, as it would, with
    main pushed to it. For a main this process pushed before: a copy of that origin, the remote-tracking branch
    the push set, and GitHub told what the hook told it (a push costs 9 processes)."""
    origin = repo.parent / "origin.git"
    head = sha(repo, "main")
    if head not in _ORIGINS:
        _push_main(repo, origin, gh)
        if head in _SEEN:
            _ORIGINS[head] = _keep_origin(repo, origin, head)
        _SEEN.add(head)
        return origin
    kept, pushed = _ORIGINS[head]
    shutil.copytree(kept, origin, symlinks=True)
    _hook(origin, gh)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "update-ref", "refs/remotes/origin/main", head)
    told = urllib.request.Request(gh.url + GIT_PUSH, data=pushed, headers={"Content-Type": "application/json"})
    urllib.request.urlopen(told).close()
    return origin


def _push_main(repo: Path, origin: Path, gh: GitHubFixture) -> None:
    git(repo.parent, "init", "-q", "--bare", str(origin))
    _hook(origin, gh)
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")


def _hook(origin: Path, gh: GitHubFixture) -> None:
    hook = origin / "hooks/post-receive"
    hook.write_text(push_hook(gh.url, REPO))
    hook.chmod(0o755)


def _keep_origin(repo: Path, origin: Path, head: str) -> tuple[Path, bytes]:
    kept = Path(tempfile.mkdtemp(prefix=f"origin-{head[:12]}-", dir=repo.parent.parent))
    shutil.copytree(origin, kept, symlinks=True, dirs_exist_ok=True)
    author_email, committer_email, author_name = git(repo, "log", "-1", "--format=%ae%n%ce%n%an", head).splitlines()
    people = {"author_email": author_email, "committer_email": committer_email, "author_name": author_name}
    return kept, json.dumps({"repo": REPO, "branch": "main", "sha": head, **people}).encode()


def test_promote_with_pr_pushes_a_branch_and_opens_the_review(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = with_origin(history_repo, gh)
    before = {p: p.read_bytes() for p in (history_repo / "registry").rglob("*.yaml")}
    code = main(
        ["promote", "sentiment@1.1.0", "--to", "staging", "--notes", "ready for staging", "--by", "alice", "--pr"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "opened pull request #1: " in out
    # The change went to the branch; the checkout is back on main as it was.
    assert git(history_repo, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert {p: p.read_bytes() for p in (history_repo / "registry").rglob("*.yaml")} == before
    branch = "regops/promote-sentiment-1.1.0-staging"
    assert git(origin, "show", f"{branch}:registry/models/sentiment/1.1.0.yaml").count("to: staging") == 1

    pull = gh.client().get_repo(REPO).get_pull(1)
    assert (pull.title, pull.head.ref, pull.base.ref, pull.user.login) == (
        "Promote sentiment@1.1.0 to staging",
        branch,
        "main",
        "regops-app[bot]",
    )
    assert sorted(label.name for label in pull.labels) == ["model:sentiment", "promotion", "stage:staging"]
    assert gh.reviewers(REPO, 1) == ([], ["ml"]), "the owners: alice wrote it, the @acme/ml team reviews"
    assert "## `sentiment@1.1.0`: dev → staging" in pull.body
    assert "| **accuracy** (primary) | 0.95 | 0.93 (+0.02 ▲) |" in pull.body

    # Nothing is left half-done when the registry has uncommitted edits: refused before any branch exists.
    (history_repo / "registry/models/sentiment/1.0.0.yaml").write_text("edited\n")
    assert main(["promote", "sentiment@1.1.0", "--to", "staging", "--notes", "x", "--by", "alice", "--pr"]) == 1
    assert "registry/ has uncommitted changes" in capsys.readouterr().err


def test_commit_push_commits_only_what_regops_changed_and_pushes(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = with_origin(history_repo, gh)
    assert main(["promote", "sentiment@1.1.0", "--to", "staging", "--notes", "x", "--by", "alice"]) == 0
    (history_repo / "notes.txt").write_text("not regops' business\n")
    capsys.readouterr()
    assert main(["commit", "--push", "-m", "Promote 1.1.0", "--by", "regops-app[bot]"]) == 0
    assert capsys.readouterr().out.startswith("committed ")
    assert git(origin, "log", "-1", "--format=%an|%s", "main").strip() == "regops-app[bot]|Promote 1.1.0"
    assert git(origin, "show", "--name-only", "--format=", "main").split() == ["registry/models/sentiment/1.1.0.yaml"]
    assert git(history_repo, "status", "--porcelain").strip() == "?? notes.txt"
    assert main(["commit", "--push", "-m", "again"]) == 0
    assert capsys.readouterr().out == "nothing changed; nothing committed\n"


def test_drift_keeps_one_issue_open_while_there_is_drift_and_closes_it(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["drift", "--issue"]) == 1
    assert "serving.json: the serving manifest is missing" in capsys.readouterr().out
    assert main(["drift", "--issue"]) == 1
    issues = gh.client().get_repo(REPO).get_issues(state="all")
    [issue] = [i for i in issues if i.pull_request is None]
    assert issue.state == "open" and issue.title == "regops: drift from the registry"
    assert "- serving.json: the serving manifest is missing" in issue.body
    assert [label.name for label in issue.labels] == ["regops-drift"]

    run_regops(capsys, history_repo, "sync")
    assert main(["drift", "--issue"]) == 0
    issue = gh.client().get_repo(REPO).get_issue(issue.number)
    assert issue.state == "closed"


def test_register_with_pr_opens_a_pull_request_for_the_new_candidate(
    history_repo: Path, gh: GitHubFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = with_origin(history_repo, gh)
    weights(tmp_path / "out-1.2.0", "1.2.0")
    code = main([
        "register", "sentiment", "--artifacts", str(tmp_path / "out-1.2.0"), "--evals", str(tmp_path / "evals2.json"),
        "--params", str(tmp_path / "params.json"), "--dataset", "reviews@2025-09-08", "--version", "1.2.0",
        "--by", "training-bot[bot]", "--pr",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "as a candidate in pull request http://127.0.0.1:" in out
    assert not (history_repo / "registry/models/sentiment/1.2.0.yaml").exists(), "main is untouched"
    [branch] = [
        b for b in git(origin, "branch", "--format=%(refname:short)").split() if b.startswith("regops/register-")
    ]
    assert "stage: candidate" in git(origin, "show", f"{branch}:registry/models/sentiment/1.2.0.yaml")
    pull = gh.client().get_repo(REPO).get_pull(1)
    assert sorted(label.name for label in pull.labels) == ["model:sentiment", "registration"]
    assert "## `sentiment@1.2.0`: registered → candidate" in pull.body


def dataset_pull(gh: GitHubFixture, repo: Path, *, author: str) -> int:
    """``author``'s pull request adding a dataset version: a change that needs no approval."""
    git(repo, "checkout", "-q", "-b", "dataset", "main")
    record = repo / "registry/datasets/reviews/2025-10-01.yaml"
    source = (repo / "registry/datasets/reviews/2025-09-08.yaml").read_text()
    record.write_text(source.replace("2025-09-08", "2025-10-01").replace("3aa7", "4bb8"))
    commit(repo, "a new dataset version")
    git(repo, "checkout", "-q", "main")
    return open_pull(gh, repo, author=author, branch="dataset")


def queue(repo: Path, origin: Path, entries: list[tuple[int, str]], *, extra: str | None = None) -> tuple[str, str]:
    """GitHub's merge queue: a group built on main merging each pull request's branch in turn, each entry a
    ``gh-readonly-queue/main/pr-N-<head>`` branch of the origin; ``extra`` deletes that file on top (a merge
    result no pull request made). (the group's ref, its commit)."""
    git(repo, "checkout", "-q", "-b", "queue", "main")
    refs = []
    for number, branch in entries:
        git(repo, "merge", "-q", "--no-ff", "-m", f"Merge #{number}", branch)
        refs.append(f"gh-readonly-queue/main/pr-{number}-{sha(repo, branch)}")
        if extra is not None and number == entries[-1][0]:
            git(repo, "rm", "-q", extra)
            commit(repo, "the merge result")
        git(repo, "push", "-q", str(origin), f"HEAD:refs/heads/{refs[-1]}", f"{branch}:refs/pull/{number}/head")
    git(repo, "checkout", "-q", "main")
    return refs[-1], sha(repo, "queue")


def test_the_merge_queue_judges_the_group_commit_and_every_pull_request_in_it(
    history_repo: Path, gh: GitHubFixture, staging_pr: int, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = with_origin(history_repo, gh)
    git(history_repo, "push", "-q", str(origin), "main")
    other = dataset_pull(gh, history_repo, author="carol")
    ref, group = queue(history_repo, origin, [(staging_pr, "promote-1.1.0"), (other, "dataset")])
    base = sha(history_repo, "main")

    code, out = check(capsys, "--merge-group", ref, "--sha", group, "--base-sha", base)
    assert code == 1, "the first pull request in the group is not approved yet"
    assert out.startswith("fail: sentiment@1.1.0 → staging: needs 1 more approval(s) from bob")
    gh.add_review(REPO, staging_pr, "bob", "APPROVED")
    code, out = check(capsys, "--merge-group", ref, "--sha", group, "--base-sha", base)
    assert code == 0, out
    assert [(s["state"], s["context"]) for s in gh.statuses(REPO, group)] == [
        ("failure", "regops/approvals"),
        ("success", "regops/approvals"),
    ]
    assert main(["pr", "check", "--merge-group", "main", "--sha", group, "--base-sha", base]) == 1
    assert "'main' is not a merge queue branch" in capsys.readouterr().err
    assert main(["pr", "check", "--merge-group", ref, "--sha", group]) == 2
    assert "--merge-group needs --sha" in capsys.readouterr().err


def test_a_group_commit_that_deletes_what_no_pull_request_deleted_fails(
    history_repo: Path, gh: GitHubFixture, staging_pr: int, capsys: pytest.CaptureFixture[str]
) -> None:
    gh.add_review(REPO, staging_pr, "bob", "APPROVED")
    origin = with_origin(history_repo, gh)
    git(history_repo, "push", "-q", str(origin), "main")
    prod = "registry/models/sentiment/1.0.0.yaml"
    ref, group = queue(history_repo, origin, [(staging_pr, "promote-1.1.0")], extra=prod)

    code, out = check(capsys, "--merge-group", ref, "--sha", group, "--base-sha", sha(history_repo, "main"))
    assert code == 1
    assert f"  {prod}: the group commit changes it, and none of its pull requests does" in out
    assert gh.statuses(REPO, group)[-1]["state"] == "failure"


# --- the trusted workflow's view: a pull request found by its head, its commits fetched as data ----------------------


def fork_pull(gh: GitHubFixture, repo: Path, origin: Path, *, branch: str) -> tuple[int, str]:
    """mallory's pull request from her fork, made of ``branch``'s commits in ``repo``: on the origin they exist only
    as ``refs/pull/N/head``, as GitHub keeps a fork's pull request; its number and head."""
    gh.add_fork(REPO, "mallory/registry")
    head = sha(repo, branch)
    number = gh.add_pull(
        REPO,
        title="Promote (from a fork)",
        head_ref=branch,
        head_sha=head,
        user="mallory",
        head_repo="mallory/registry",
    )
    git(repo, "push", "-q", str(origin), f"{branch}:refs/pull/{number}/head")
    return number, head


def trusted_checkout(origin: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """What the trusted workflow checks out: a clone of the origin's main, the working directory from now on."""
    clone = origin.parent / "checkout"
    git(origin.parent, "clone", "-q", "--no-local", "-b", "main", str(origin), str(clone))
    monkeypatch.chdir(clone)
    return clone


def test_check_by_head_sha_finds_a_fork_s_pull_request_and_reads_its_commits_as_data(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    origin = with_origin(history_repo, gh)
    git(history_repo, "checkout", "-q", "-b", "promote-1.1.0")
    run_regops(capsys, history_repo, "promote", "sentiment@1.1.0", "--to", "staging", "--notes", "n", "--by", "mallory")
    gh.add_pull(REPO, title="Another", head_ref="other", head_sha=fake_sha("other"), user="alice")
    number, head = fork_pull(gh, history_repo, origin, branch="promote-1.1.0")
    checkout = trusted_checkout(origin, monkeypatch)
    with pytest.raises(subprocess.CalledProcessError):
        git(checkout, "cat-file", "-e", f"{head}^{{commit}}")

    code, out = check(capsys, "--head-sha", head)
    assert code == 1, out
    assert out.splitlines()[0] == (
        f"pull request #{number}: fail: sentiment@1.1.0 → staging: needs 1 more approval(s) from alice, bob"
    )
    assert [(s["state"], s["description"]) for s in gh.statuses(REPO, head)] == [
        ("failure", "sentiment@1.1.0 → staging: needs 1 more approval(s) from alice, bob")
    ]
    # Fetched as data: the pull request's head is a ref of the clone, which still has main checked out, unchanged.
    assert git(checkout, "rev-parse", f"refs/remotes/pull/{number}/head").strip() == head
    assert (git(checkout, "rev-parse", "--abbrev-ref", "HEAD").strip(), git(checkout, "status", "--porcelain")) == (
        "main",
        "",
    )

    assert main(["pr", "report", "--head-sha", head]) == 0
    assert capsys.readouterr().out == f"pull request #{number}: regops comment created\n"
    assert "## `sentiment@1.1.0`: dev → staging" in gh.comments(REPO, number)[0][1]

    gh.add_review(REPO, number, "bob", "APPROVED")
    assert main(["pr", "check", "--head-sha", head]) == 0
    assert capsys.readouterr().out.startswith(f"pull request #{number}: pass: approved: sentiment@1.1.0 → staging")
    assert gh.statuses(REPO, head)[-1]["state"] == "success"


def test_a_head_no_open_pull_request_has_gets_no_status_and_no_comment(
    history_repo: Path,
    gh: GitHubFixture,
    staging_pr: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checkout = trusted_checkout(with_origin(history_repo, gh), monkeypatch)
    moved_on = sha(checkout, "main")
    for action in ("check", "report"):
        assert main(["pr", action, "--head-sha", moved_on]) == 0
        assert capsys.readouterr().out == (
            f"no open pull request has head {moved_on} (it moved on; the newer run decides)\n"
        )
    assert gh.statuses(REPO, moved_on) == []
    assert gh.comments(REPO, staging_pr) == []
    assert main(["pr", "check", "--head-sha", moved_on, "--sha", moved_on]) == 2
    assert "--sha goes with --pr or --merge-group" in capsys.readouterr().err


def test_validation_problems_fail_the_status_whatever_the_approvals(
    history_repo: Path, gh: GitHubFixture, staging_pr: int, capsys: pytest.CaptureFixture[str]
) -> None:
    gh.add_review(REPO, staging_pr, "bob", "APPROVED")
    assert check(capsys, staging_pr)[0] == 0
    # A push after the approval, which edits what registration fixed: the evals and the hyperparameters.
    path = history_repo / "registry/models/sentiment/1.1.0.yaml"
    path.write_text(path.read_text().replace("accuracy: 0.95", "accuracy: 0.99").replace("epochs: 3", "epochs: 4"))
    commit(history_repo, "edit evals and params")
    gh.set_head(REPO, staging_pr, sha(history_repo))
    gh.add_review(REPO, staging_pr, "bob", "APPROVED")

    code, out = check(capsys, staging_pr)
    assert code == 1
    assert out.splitlines() == [
        "fail: 2 validation problems: run regops validate --base main",
        "  registry/models/sentiment/1.1.0.yaml:10:1: hyperparameters: hyperparameters is fixed at registration and "
        "differs from main",
        "  registry/models/sentiment/1.1.0.yaml:12:1: evals: evals is fixed at registration and differs from main",
        "sentiment@1.1.0 dev -> staging: 1/1 approvals (ok)",
        "  approved by: bob",
        # Editing a recorded version is a repair only the admins (carol) may approve: it fails on that count too.
        "registry/models/sentiment/1.1.0.yaml: 0/1 approvals (missing)",
        "  changes registry/models/sentiment/1.1.0.yaml: evals, hyperparameters changed: regops' jobs on main write "
        "these, not a pull request",
        "  needs 1 more from: carol",
        "  bob's approval does not count: not one of the admins",
    ]
    assert gh.statuses(REPO, sha(history_repo))[-1] == {
        "context": "regops/approvals",
        "state": "failure",
        "description": "2 validation problems: run regops validate --base main",
        "target_url": None,
        "creator": "regops-app[bot]",
    }


def test_fetch_authenticates_with_github_token_as_actions_checkout_does_and_never_shows_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A private repository's commits need the token once the checkout kept no credentials: git sends it as the
    header actions/checkout persists, which this plain HTTP server records."""
    seen: list[str | None] = []

    class Remote(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Remote)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        git(tmp_path, "init", "-q", "clone")
        git(tmp_path / "clone", "remote", "add", "origin", f"http://127.0.0.1:{server.server_port}/acme/models")
        monkeypatch.setenv("GITHUB_TOKEN", "ghs_job_token_123")
        monkeypatch.setenv("GITHUB_SERVER_URL", f"http://127.0.0.1:{server.server_port}")  # where the token goes
        with pytest.raises(GitError) as refused:
            fetch(tmp_path / "clone", ["+refs/pull/7/head:refs/remotes/pull/7/head"])
        basic = base64.b64encode(b"x-access-token:ghs_job_token_123").decode()
        assert seen == [f"basic {basic}"]
        assert "ghs_job_token_123" not in str(refused.value) and basic not in str(refused.value)
        assert str(refused.value).startswith("git fetch -q --no-tags: ")

        monkeypatch.delenv("GITHUB_TOKEN")
        with pytest.raises(GitError):
            fetch(tmp_path / "clone", ["refs/pull/7/head"])
        assert seen[1:] == [None]
    finally:
        server.shutdown()
        server.server_close()


def lax_pull(gh: GitHubFixture, repo: Path, head: str, *, protect: bool) -> int:
    """alice's pull request of the same head into ``lax``, whose policy asks for no approval; with ``protect``,
    main's regops.yaml lists lax among the protected branches."""
    git(repo, "checkout", "-q", "main")
    if protect:
        config = repo / "registry/regops.yaml"
        config.write_text(config.read_text() + "protected_branches: [main, lax]\n")
        commit(repo, "protect lax too")
    git(repo, "checkout", "-q", "-b", "lax", "main")
    config = repo / "registry/regops.yaml"
    config.write_text(config.read_text().replace("staging: {from: [dev], approvals: 1}", "staging: {from: [dev]}"))
    commit(repo, "no approvals on lax")
    gh.add_branch(REPO, "lax", sha(repo))
    gh.add_branch(REPO, "main", sha(repo, "main"))
    return gh.add_pull(
        REPO, title="Same head, lax base", head_ref="promote-1.1.0", head_sha=head, user="alice", base_ref="lax"
    )


@pytest.mark.parametrize("protect", [True, False])
def test_a_pass_judged_for_another_base_never_shows_for_main(
    history_repo: Path, gh: GitHubFixture, staging_pr: int, capsys: pytest.CaptureFixture[str], protect: bool
) -> None:
    """A commit status belongs to a commit, not to a pull request: the same head opened against a branch whose
    policy asks for nothing must not pass the pull request into main. A base that is not protected is not judged."""
    head = sha(history_repo, "promote-1.1.0")
    lax = lax_pull(gh, history_repo, head, protect=protect)
    origin = with_origin(history_repo, gh)
    refs = [f"{head}:refs/pull/{number}/head" for number in (staging_pr, lax)]
    git(history_repo, "push", "-q", str(origin), "main", "lax", *refs)

    code, out = check(capsys, "--head-sha", head)
    assert code == 1
    assert (f"pull request #{lax}: pass: approved: sentiment@1.1.0 → staging" in out) is protect
    assert f"pull request #{staging_pr}: fail: sentiment@1.1.0 → staging: needs 1 more approval(s) from bob" in out
    which = f"#{staging_pr}: " if protect else ""
    assert [(s["state"], s["description"]) for s in gh.statuses(REPO, head)] == [
        ("failure", f"{which}sentiment@1.1.0 → staging: needs 1 more approval(s) from bob")
    ]
    code, out = check(capsys, lax)
    assert (
        (code, out.strip()) == (0, "pass: into lax, not a protected branch: not judged") if not protect else code == 0
    )


def test_a_fork_sharing_an_approved_head_cannot_fail_its_status(
    history_repo: Path, gh: GitHubFixture, staging_pr: int, capsys: pytest.CaptureFixture[str]
) -> None:
    """mallory opens a pull request from her fork with the head of alice's approved one: the status stays green
    (merging either brings the same approved change into main)."""
    gh.add_review(REPO, staging_pr, "bob", "APPROVED")
    origin = with_origin(history_repo, gh)
    git(history_repo, "push", "-q", str(origin), "main", f"promote-1.1.0:refs/pull/{staging_pr}/head")
    number, head = fork_pull(gh, history_repo, origin, branch="promote-1.1.0")

    code, out = check(capsys, "--head-sha", head)
    assert code == 1, "mallory's own pull request is not approved"
    assert f"pull request #{number}: fail: " in out
    assert [s["state"] for s in gh.statuses(REPO, head)] == ["success"]


class SmartHttpGit(BaseHTTPRequestHandler):
    """A git remote over HTTP as GitHub serves one: ``git http-backend`` for the repositories under ``root``,
    behind HTTP basic authentication that admits ``token`` only (GitHub's ``x-access-token:<token>``). Every
    request's ``Authorization`` header is recorded in ``seen``."""

    root: Path
    token: str
    seen: list[str | None]

    def do_GET(self) -> None:
        self._serve(b"")

    def do_POST(self) -> None:
        self._serve(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    def _serve(self, body: bytes) -> None:
        given = self.headers.get("Authorization")
        self.seen.append(given)
        expected = "basic " + base64.b64encode(f"x-access-token:{self.token}".encode()).decode()
        if (given or "").lower() != expected.lower():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        cgi = {
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REMOTE_USER": "x-access-token",  # who git http-backend lets receive a push
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "CONTENT_LENGTH": str(len(body)),
        }
        done = subprocess.run(["git", "http-backend"], input=body, capture_output=True, env=cgi, check=True)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        headers = [line.split(": ", 1) for line in head.decode().split("\r\n")]
        status = next((int(value.split()[0]) for name, value in headers if name == "Status"), 200)
        self.send_response(status)
        for name, value in headers:
            if name != "Status":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_origin(history_repo: Path, tmp_path: Path) -> Iterator[tuple[str, Path, list[str | None]]]:
    """``history_repo``'s main on a bare repository served over HTTP (``SmartHttpGit``, admitting the token
    ``ghs_app_token_123``) and made its ``origin``: the server's address, the bare repository, the headers seen."""
    served = tmp_path / "served"
    git(tmp_path, "init", "-q", "--bare", str(served / "acme" / "models.git"))
    git(history_repo, "push", "-q", str(served / "acme" / "models.git"), "main")
    seen: list[str | None] = []
    handler = type("Remote", (SmartHttpGit,), {"root": served, "token": "ghs_app_token_123", "seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    git(history_repo, "remote", "add", "origin", f"{url}/acme/models.git")
    try:
        yield url, served / "acme" / "models.git", seen
    finally:
        server.shutdown()
        server.server_close()


def test_push_authenticates_with_the_step_s_github_token_only_and_never_writes_it_down(
    history_repo: Path,
    http_origin: tuple[str, Path, list[str | None]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The workflows' checkouts keep no credentials (persist-credentials: false): `regops commit --push` pushes
    with the GITHUB_TOKEN of its own step, sent as actions/checkout's header to GITHUB_SERVER_URL only."""
    url, origin, seen = http_origin
    before = git(origin, "rev-parse", "main").strip()
    config = history_repo / "registry" / "regops.yaml"
    monkeypatch.setenv("GIT_TERMINAL_PROMPT", "0")
    monkeypatch.setenv("GITHUB_SERVER_URL", url)

    def push() -> int:
        """A change, then the sync job's last step."""
        config.write_text(config.read_text() + "# a change to push\n")
        return main(["commit", "--push", "-m", "Sync", "--by", "regops-app[bot]"])

    # No token in the step's env: refused, saying how to give one; nothing reached the remote.
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    assert push() == 1
    err = capsys.readouterr().err
    assert "git push to origin (main) was refused for want of credentials: set GITHUB_TOKEN in this step's env" in err
    assert git(origin, "rev-parse", "main").strip() == before
    assert set(seen) == {None}

    # A token meant for GitHub is not sent to another server (GITHUB_SERVER_URL names where it goes).
    seen.clear()
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_app_token_123")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    assert push() == 1
    said = (
        "was refused for want of credentials: GITHUB_TOKEN, which goes to https://github.com only (GITHUB_SERVER_URL)"
    )
    assert said in capsys.readouterr().err
    assert set(seen) == {None}

    # The step's token: the push goes through, authenticated as actions/checkout would, and is written nowhere.
    seen.clear()
    monkeypatch.setenv("GITHUB_SERVER_URL", url)
    assert push() == 0
    basic = base64.b64encode(b"x-access-token:ghs_app_token_123").decode()
    assert seen and set(seen) == {f"basic {basic}"}
    assert git(origin, "rev-parse", "main").strip() == git(history_repo, "rev-parse", "HEAD").strip() != before
    assert git(origin, "log", "-1", "--format=%an|%s", "main").strip() == "regops-app[bot]|Sync"
    stored = (history_repo / ".git" / "config").read_text()
    assert "ghs_app_token_123" not in stored and basic not in stored
