"""The approvals gate tried as an attacker with push access to a branch: every change a pull request makes is judged
by the base branch's rules (default deny), and the record of who approved is written only by regops.

Each test opens a real pull request (commits of a real git repository, the PR on the local GitHub server), runs
``regops pr check`` and judges the outcome by the commit status GitHub holds, and the files after a merge.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from regops.cli import main
from regops.registry import Registry
from tests.conftest import commit, git, run_regops
from tests.servers.github_fixtures import GitHubFixture
from tests.test_github import REPO, check, open_pull, sha

PROD = "registry/models/sentiment/1.0.0.yaml"


def pull_request(gh: GitHubFixture, repo: Path, edit: dict[str, str], *, author: str = "alice") -> int:
    """``author``'s pull request making ``edit`` (path -> new text) on a branch off main."""
    git(repo, "checkout", "-q", "-b", "change", "main")
    for relative, text in edit.items():
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        (repo / relative).write_text(text)
    commit(repo, "a change")
    return open_pull(gh, repo, author=author, branch="change")


def staging_branch(capsys: pytest.CaptureFixture[str], repo: Path, *, by: str = "alice") -> None:
    """Branch ``change`` off main, where ``by`` moves sentiment 1.1.0 to staging (committed)."""
    git(repo, "checkout", "-q", "-b", "change", "main")
    run_regops(capsys, repo, "promote", "sentiment@1.1.0", "--to", "staging", "--notes", "n", "--by", by)


def status(gh: GitHubFixture, repo: Path) -> str:
    """The state of the latest ``regops/approvals`` status on the branch's head ("" when none)."""
    found = gh.statuses(REPO, sha(repo))
    return found[-1]["state"] if found else ""


def judged(capsys: pytest.CaptureFixture[str], gh: GitHubFixture, repo: Path, number: int) -> tuple[str, str]:
    code, out = check(capsys, number)
    state = status(gh, repo)
    assert (code == 0) == (state == "success"), out
    return state, out


def refused_with_an_owner_s_approval(
    capsys: pytest.CaptureFixture[str], gh: GitHubFixture, repo: Path, number: int
) -> str:
    """bob (an owner of sentiment) approves; the status still fails. What the check said."""
    gh.add_review(REPO, number, "bob", "APPROVED")
    state, out = judged(capsys, gh, repo, number)
    assert state == "failure"
    return out


def edited(repo: Path, relative: str, old: str, new: str) -> dict[str, str]:
    text = (repo / relative).read_text()
    assert old in text, f"{old!r} not in {relative}"
    return {relative: text.replace(old, new, 1)}


def test_repointing_prod_weights_needs_the_admins(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 1a: an edit of a recorded version's storage serves other weights after the merge."""
    number = pull_request(
        gh,
        history_repo,
        edited(history_repo, PROD, "storage: {backend: local, tier: hot}", "storage: {backend: hf, repo: acme-ml/sentiment, "
        "revision: " + "e" * 40 + ", tier: hot}"),
    )  # fmt: skip
    gh.add_review(REPO, number, "bob", "APPROVED")  # an owner of sentiment: not enough for a repair
    state, out = judged(capsys, gh, history_repo, number)
    assert state == "failure"
    assert f"changes {PROD}: artifacts changed: regops' jobs on main write these, not a pull request" in out
    assert "needs 1 more from: carol" in out
    gh.add_review(REPO, number, "carol", "APPROVED")  # an admin: a repair
    assert judged(capsys, gh, history_repo, number)[0] == "success"


def test_lowering_the_policy_needs_the_admins_and_the_base_policy_still_judges(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 1b: regops.yaml is the admins' (as many approvals as the strictest stage); an owner cannot pass it."""
    config = "registry/regops.yaml"
    number = pull_request(
        gh, history_repo, edited(history_repo, config, "staging: {from: [dev], approvals: 1}", "staging: {from: [dev]}")
    )
    out = refused_with_an_owner_s_approval(capsys, gh, history_repo, number)
    assert f"changes {config}: the registry's policy" in out
    assert "bob's approval does not count: not one of the admins" in out


def test_a_canary_verdict_written_by_hand_does_not_pass(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 1c: `canary.result: passed` in a PR is an edit only the canary job on main makes; the prod PR after
    it still reads the canary from the base."""
    run_regops(capsys, history_repo, "promote", "sentiment@1.1.0", "--to", "staging", "--notes", "n", "--by", "alice")
    staged = "registry/models/sentiment/1.1.0.yaml"
    number = pull_request(gh, history_repo, edited(history_repo, staged, "result: pending", "result: passed"))
    out = refused_with_an_owner_s_approval(capsys, gh, history_repo, number)
    assert f"changes {staged}: canary changed" in out


def test_a_new_model_needs_the_admins(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 1d: a new model naming another model's Hub repository would steer sync onto that repository."""
    model = (history_repo / "registry/models/sentiment/model.yaml").read_text()
    hijack = model.replace("name: sentiment", "name: sentiment-two").replace(
        'owners: [alice, "@acme/ml"]', "owners: [mallory]"
    )
    number = pull_request(gh, history_repo, {"registry/models/sentiment-two/model.yaml": hijack}, author="mallory")
    out = refused_with_an_owner_s_approval(capsys, gh, history_repo, number)
    assert "changes registry/models/sentiment-two/model.yaml: a new model (sentiment-two)" in out


def test_a_symlink_under_the_registry_is_never_allowed(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 1e: a symlinked model folder is read as a plain file by the check and followed by main."""
    git(history_repo, "checkout", "-q", "-b", "change", "main")
    (history_repo / "registry/models/evil").symlink_to("sentiment")
    commit(history_repo, "a link")
    number = open_pull(gh, history_repo, author="alice", branch="change")
    for reviewer in ("bob", "carol"):
        gh.add_review(REPO, number, reviewer, "APPROVED")
    state, out = judged(capsys, gh, history_repo, number)
    assert state == "failure"
    assert "registry/models/evil: not allowed: a symlink: never allowed under registry/" in out


def test_any_other_path_needs_the_admins_unless_regops_yaml_leaves_it_unjudged(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    number = pull_request(gh, history_repo, {".github/workflows/x.yml": "on: push\n", "docs/notes.md": "hi\n"})
    state, out = judged(capsys, gh, history_repo, number)
    assert state == "failure"
    assert "changes .github/workflows/x.yml: protected" in out
    assert "changes docs/notes.md: no rule of regops.yaml covers it" in out
    gh.add_review(REPO, number, "carol", "APPROVED")
    assert judged(capsys, gh, history_repo, number)[0] == "success"


def test_a_plain_new_candidate_needs_no_approval(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = (history_repo / "registry/models/sentiment/1.1.0.yaml").read_text()
    head, _, _ = text.partition("stage:")
    new = head.replace("version: 1.1.0", "version: 1.2.0") + "stage: candidate\n"
    number = pull_request(gh, history_repo, {"registry/models/sentiment/1.2.0.yaml": new}, author="carol")
    state, out = judged(capsys, gh, history_repo, number)
    assert state == "success", out


def test_a_transition_must_name_the_pull_request_s_author(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 3: a stager who writes carol's name as making the move could then approve the prod PR."""
    staging_branch(capsys, history_repo, by="carol")
    number = open_pull(gh, history_repo, author="alice", branch="change")
    out = refused_with_an_owner_s_approval(capsys, gh, history_repo, number)
    assert "transitions[1].by is carol, but the pull request is alice's" in out


def test_without_a_login_regops_refuses_to_record_a_display_name(
    history_repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 3: `by` fell back to git's user.name ("Alice Example"), which excludes nobody from approving."""
    git(history_repo, "config", "--unset", "regops.login")
    monkeypatch.delenv("REGOPS_LOGIN", raising=False)
    before = (history_repo / "registry/models/sentiment/1.1.0.yaml").read_bytes()
    assert main(["promote", "sentiment@1.1.0", "--to", "staging", "--notes", "n"]) == 1
    assert "who is acting? regops records a GitHub login: pass --by LOGIN" in capsys.readouterr().err
    assert (history_repo / "registry/models/sentiment/1.1.0.yaml").read_bytes() == before
    assert main(["promote", "sentiment@1.1.0", "--to", "staging", "--notes", "n", "--by", "Alice Example"]) == 1
    assert "'Alice Example' is not a GitHub login" in capsys.readouterr().err
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_ACTOR", "alice")
    assert main(["promote", "sentiment@1.1.0", "--to", "staging", "--notes", "n", "--by", "bob"]) == 1
    assert "--by bob would record someone else" in capsys.readouterr().err
    assert (history_repo / "registry/models/sentiment/1.1.0.yaml").read_bytes() == before


def test_a_commit_tied_to_no_github_account_fails_closed(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 3: bob commits with an e-mail of no account, then approves: he is invisible as a committer."""
    staging_branch(capsys, history_repo)
    gh.add_branch(REPO, "main", sha(history_repo, "main"))
    head = sha(history_repo)
    number = gh.add_pull(
        REPO, title="Promote", head_ref="change", head_sha=head, user="alice",
        commits=[{"sha": head, "author_login": None, "committer_login": None, "author_name": "Bob",
                  "author_email": "bob@laptop.local"}],
    )  # fmt: skip
    out = refused_with_an_owner_s_approval(capsys, gh, history_repo, number)
    assert f"commit {head[:7]}'s author Bob <bob@laptop.local> is linked to no GitHub account" in out


def test_a_pull_request_cannot_write_its_own_approvers(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 4: `pr`/`approved_by` on a new transition would survive the merge, and stamping skipped them."""
    staging_branch(capsys, history_repo)
    staged = history_repo / "registry/models/sentiment/1.1.0.yaml"
    staged.write_text(staged.read_text().replace("notes: n}", "notes: n, pr: 1, approved_by: [carol]}"))
    commit(history_repo, "forged record")
    number = open_pull(gh, history_repo, author="alice", branch="change")
    out = refused_with_an_owner_s_approval(capsys, gh, history_repo, number)
    assert "transitions[1].approved_by: a new transition carries no approved_by" in out
    assert "transitions[1].pr: a new transition carries no pr" in out


def test_stamping_records_only_the_reviews_that_counted(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Finding 4: mallory's approval never counted (not an owner), so the record must not name her."""
    staging_branch(capsys, history_repo)
    number = open_pull(gh, history_repo, author="alice", branch="change")
    for reviewer in ("mallory", "bob"):
        gh.add_review(REPO, number, reviewer, "APPROVED")
    assert judged(capsys, gh, history_repo, number)[0] == "success"
    git(history_repo, "checkout", "-q", "main")
    git(history_repo, "merge", "-q", "--no-ff", "-m", f"Merge pull request #{number}", "change")
    gh.merge(REPO, number, sha(history_repo))
    run_regops(capsys, history_repo, "pr", "stamp")
    step = Registry.load(history_repo / "registry").version("sentiment", "1.1.0").steps[-1]
    assert (step.pr, step.approved_by) == (number, ("bob",))


def test_a_commit_regops_makes_as_a_login_carries_the_e_mail_github_ties_to_that_account(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """The check fails on commits GitHub ties to no account, so regops' own commits (sync, the canary's PRs) use
    the account's `ID+login` noreply address, which GitHub links whatever the account's age or settings."""
    config = history_repo / "registry/regops.yaml"
    config.write_text(config.read_text() + "# a change\n")
    assert main(["commit", "-m", "Sync", "--by", "regops-app[bot]"]) == 0
    bot = gh.client().get_user("regops-app[bot]")
    email = git(history_repo, "log", "-1", "--format=%ae").strip()
    assert email == f"{bot.id}+regops-app[bot]@users.noreply.github.com"
    assert gh.login_of(email) == "regops-app[bot]"
    assert gh.login_of("regops-app[bot]@users.noreply.github.com") is None, "the ID-less form is an old account's"
