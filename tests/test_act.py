"""The workflows of .github/workflows run for real, by act, against a local origin, GitHub and Hub.

Each test does on "GitHub" what people do there (push a branch, open a pull request, approve it, merge it), runs
the workflows GitHub would start (for a pull request: registry-check, then registry-approvals on its end), and checks
what people then see: the jobs' results, the one PR comment, the ``regops/approvals`` status, the Hub's refs, and
main after the sync. How act is set up, and what stands in for GitHub and the marketplace actions, is in
tests/act.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import HfApi

from regops.registry import Registry
from tests.act import Act, Origin, PullRequest, Run, add_project, pushed, workflow_run
from tests.conftest import commit, git, run_regops, weights
from tests.servers.github_fixtures import GitHubFixture
from tests.test_hub import HOT, hf_repo, register, to_prod

pytestmark = pytest.mark.act

REPO = "acme/models"
ACTIONS_BOT = "github-actions[bot]"
ACTIONS_TOKEN = "ghs_github_actions_job_token"
APP_ID = "424242"
APP_PRIVATE_KEY = "test-private-key-of-app-424242"
STAGING_TITLE = "sentiment 1.1.0 to staging"
PROMOTE = ("promote", "sentiment@1.1.0", "--to", "staging", "--notes", "ready", "--by", "alice")
APPROVALS = "registry-approvals.yml"
CHECK_STEP = 'regops pr check --head-sha "$HEAD_SHA"'
COMMIT_MESSAGE = "Sync the registry after a merge (auto-promote, sync, approvals, retention)"
COMMIT_STEP = f'regops commit --push -m "{COMMIT_MESSAGE}"'


def runner(github: GitHubFixture, clone: Path, tmp_path: Path) -> Act:
    """regops committed into ``clone``, published as the origin, its main on the local GitHub; act set up for them.

    The workflows' ``GITHUB_TOKEN`` is a job token of ``github-actions[bot]``, as on GitHub.
    """
    add_project(clone)
    origin = Origin.publish(clone, tmp_path / "origin.git")
    github.add_branch(REPO, "main", origin.sha("main"))
    github.add_token(ACTIONS_TOKEN, {"login": ACTIONS_BOT, "repos": {REPO: "write"}})
    (tmp_path / "act").mkdir()
    return Act(
        tmp_path / "act",
        origin,
        REPO,
        env={"GITHUB_API_URL": github.api_url},
        secrets={"GITHUB_TOKEN": ACTIONS_TOKEN},
    )


def promotion(
    act: Act, github: GitHubFixture, clone: Path, capsys: pytest.CaptureFixture[str], *, branch: str, title: str
) -> PullRequest:
    """alice's pull request moving sentiment 1.1.0 from dev to staging."""
    git(clone, "checkout", "-q", "-b", branch)
    run_regops(capsys, clone, *PROMOTE)
    return PullRequest.open(github, act.origin, clone, branch=branch, author="alice", title=title, repository=REPO)


def check(
    act: Act,
    event: str,
    payload: dict[str, object],
    pull: PullRequest,
    actor: str,
    *,
    secrets: dict[str, str] | None = None,
) -> tuple[Run, Run]:
    """registry-check on ``event``, for the pull request's merge commit (what GitHub checks out for a PR), with
    ``secrets`` (a fork's run: its read-only token, nothing else); then registry-approvals on that run's end
    (:func:`decide`), with the repository's. Both runs."""
    run = act.run(event, "registry-check.yml", payload, sha=pull.merge_sha, actor=actor, secrets=secrets)
    return run, decide(act, pull, event, conclusion="success" if run.code == 0 else "failure", actor=actor)


def decide(act: Act, pull: PullRequest, event: str, *, conclusion: str, actor: str) -> Run:
    """registry-approvals on the end of registry-check's run on ``event`` for the pull request, as GitHub starts it:
    main's copy of the workflow at main's tip, whatever the pull request changed."""
    payload = pull.completed(event, conclusion=conclusion, sender=actor)
    return act.run("workflow_run", APPROVALS, payload, sha=act.origin.sha("main"), actor=actor)


def states(github: GitHubFixture, sha: str) -> list[tuple[str, str, str]]:
    """The commit statuses of ``sha``, oldest first: state, context, description."""
    return [(s["state"], s["context"], s["description"]) for s in github.statuses(REPO, sha)]


@pytest.fixture
def act(history_repo: Path, github_server: GitHubFixture, tmp_path: Path) -> Act:
    """act for ``history_repo`` (sentiment 1.0.0 in prod, 1.1.0 in dev; weights in a local store)."""
    return runner(github_server, history_repo, tmp_path)


@pytest.fixture
def staging_pr(
    act: Act, github_server: GitHubFixture, history_repo: Path, capsys: pytest.CaptureFixture[str]
) -> PullRequest:
    """alice's pull request moving sentiment 1.1.0 to staging, open on the local GitHub and pushed to the origin."""
    return promotion(act, github_server, history_repo, capsys, branch="promote-1.1.0", title=STAGING_TITLE)


def test_a_promotion_is_validated_reported_once_and_held_until_an_owner_approves(
    act: Act, staging_pr: PullRequest, github_server: GitHubFixture
) -> None:
    pull = staging_pr
    run, decided = check(act, "pull_request", pull.opened(), pull, "alice")
    assert run.jobs == {"validate": "success"}, run.log()
    assert "Successfully installed regops-" in run.output("validate"), "regops is built from the checkout"
    assert decided.jobs == {"report": "success", "approvals": "failure"}, decided.log()
    assert decided.steps("approvals")[CHECK_STEP] == "failure", "regops pr check exits 1 while approvals are missing"
    assert f"checked out {act.origin.sha('main')} (refs/heads/main)" in decided.output("approvals"), "main, not the PR"
    comments = github_server.comments(REPO, pull.number)
    assert [author for author, _ in comments] == [ACTIONS_BOT]
    assert "No problems." in comments[0][1]
    assert "## `sentiment@1.1.0`: dev → staging" in comments[0][1]
    assert states(github_server, pull.head_sha) == [
        ("failure", "regops/approvals", "sentiment@1.1.0 → staging: needs 1 more approval(s) from bob")
    ]

    github_server.add_review(REPO, pull.number, "bob", "APPROVED")
    run, decided = check(act, "pull_request_review", pull.reviewed("bob"), pull, "bob")
    assert (run.jobs, decided.jobs) == ({"validate": "success"}, {"report": "success", "approvals": "success"})
    assert f"pull request #{pull.number}: regops comment unchanged" in decided.output("report")
    assert len(github_server.comments(REPO, pull.number)) == 1
    assert states(github_server, pull.head_sha)[-1][:2] == ("success", "regops/approvals")


def test_shell_metacharacters_in_a_pr_title_and_branch_name_are_never_executed(
    act: Act, history_repo: Path, github_server: GitHubFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "pwned"
    title = f'"; touch {marker}-title; echo " $(touch {marker}-title-2) `touch {marker}-title-3`'
    branch = f'x";touch${{IFS}}{marker}-branch;echo"$(touch${{IFS}}{marker}-branch-2)`touch${{IFS}}{marker}-branch-3`'
    pull = promotion(act, github_server, history_repo, capsys, branch=branch, title=title)

    # The branch name reaches registry-approvals too, as the event's workflow_run.head_branch.
    run, decided = check(act, "pull_request", pull.opened(), pull, "alice")
    assert run.jobs == {"validate": "success"}, run.log()
    assert decided.jobs == {"report": "success", "approvals": "failure"}, decided.log()
    assert len(github_server.comments(REPO, pull.number)) == 1
    assert states(github_server, pull.head_sha)[0][0] == "failure"
    assert sorted(path.name for path in tmp_path.glob("pwned*")) == []


def test_in_the_merge_queue_the_group_commit_gets_the_approvals_status_and_no_comment(
    act: Act, staging_pr: PullRequest, github_server: GitHubFixture
) -> None:
    pull = staging_pr
    github_server.add_review(REPO, pull.number, "bob", "APPROVED")
    ref, group = act.origin.enqueue(pull)
    github_server.add_branch(REPO, ref.removeprefix("refs/heads/"), group)

    run = act.run("merge_group", "registry-check.yml", pull.queued(ref, group), sha=group, actor="bob")
    assert run.jobs == {"validate": "success", "approvals": "success"}, run.log()
    assert f"checked out {group}" in run.output("validate"), "the group's commit is what is validated"
    assert states(github_server, group) == [("success", "regops/approvals", "approved: sentiment@1.1.0 → staging")]

    # registry-check's end starts registry-approvals, which leaves a merge group to registry-check.
    event = workflow_run(REPO, event="merge_group", conclusion="success", head_sha=group, head_branch=ref, sender="bob")
    decided = act.run("workflow_run", APPROVALS, event, sha=act.origin.sha("main"), actor="bob")
    assert (decided.code, decided.jobs) == (0, {}), decided.log()
    assert github_server.comments(REPO, pull.number) == []
    assert len(states(github_server, group)) == 1


# Appended to regops/__init__.py on a pull request's branch: wherever the PR's own code runs, it leaves the environment
# it was given in FOLDER, in a file named after the workflow and the job.
TRAP = """
import json as _json, os as _os
_where = _os.path.join(FOLDER, "-".join((_os.environ.get("GITHUB_WORKFLOW", "-"), _os.environ.get("GITHUB_JOB", "-"), str(_os.getpid()))))
with open(_where + ".json", "w") as _file:
    _json.dump(dict(_os.environ), _file)
"""
FORK = "mallory/registry"
FORK_TOKEN = "ghs_github_actions_job_token_of_a_fork_run"  # GitHub's token for a fork's run: read-only
HF_SECRET = "hf_repository_secret_value"


def test_a_pull_request_from_a_fork_gets_its_status_from_main_and_its_code_never_meets_a_secret(
    act: Act, history_repo: Path, github_server: GitHubFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """mallory's promotion from her fork: registry-check runs her code with a read-only token and no secrets, as
    GitHub runs a fork's pull request, so it writes nothing; registry-approvals, which GitHub runs from main with the
    repository's secrets and a write token, sets the status, and never runs her code."""
    ran = tmp_path / "pr-code-ran"
    ran.mkdir()
    git(history_repo, "checkout", "-q", "-b", "staging-please")
    run_regops(capsys, history_repo, "promote", "sentiment@1.1.0", "--to", "staging", "--notes", "x", "--by", "mallory")
    init = history_repo / "src/regops/__init__.py"
    init.write_text(init.read_text() + TRAP.replace("FOLDER", repr(str(ran))))
    commit(history_repo, "regops, as mallory would like it to run")
    pull = PullRequest.open(
        github_server, act.origin, history_repo, branch="staging-please", author="mallory", title="staging please",
        repository=REPO, fork=FORK,
    )  # fmt: skip
    assert github_server.client().get_repo(REPO).get_pull(pull.number).head.repo.full_name == FORK
    github_server.add_token(FORK_TOKEN, {"login": ACTIONS_BOT, "repos": {REPO: "read"}})
    act.secrets |= {"HF_TOKEN": HF_SECRET}  # the repository's: GitHub gives them to a workflow_run run, not to a fork's
    fork_run = {"GITHUB_TOKEN": FORK_TOKEN}

    run, decided = check(act, "pull_request", pull.opened(), pull, "mallory", secrets=fork_run)
    assert run.jobs == {"validate": "success"}, run.log()
    assert decided.jobs == {"report": "success", "approvals": "failure"}, decided.log()
    # Her change to regops' own code is a path no stage rule covers: the admins' (carol) to approve, besides the move.
    needs = "sentiment@1.1.0 → staging: needs 1 more approval(s) from alice, bob (+1 more)"
    assert states(github_server, pull.head_sha) == [("failure", "regops/approvals", needs)]
    assert [author for author, _ in github_server.comments(REPO, pull.number)] == [ACTIONS_BOT]

    github_server.add_review(REPO, pull.number, "alice", "APPROVED")
    run, decided = check(act, "pull_request_review", pull.reviewed("alice"), pull, "alice", secrets=fork_run)
    assert (run.jobs, decided.jobs) == ({"validate": "success"}, {"report": "success", "approvals": "failure"})
    assert states(github_server, pull.head_sha)[-1] == (
        "failure",
        "regops/approvals",
        "src/regops/__init__.py: needs 1 more approval(s) from carol",
    )
    github_server.add_review(REPO, pull.number, "carol", "APPROVED")
    run, decided = check(act, "pull_request_review", pull.reviewed("carol"), pull, "carol", secrets=fork_run)
    assert (run.jobs, decided.jobs) == ({"validate": "success"}, {"report": "success", "approvals": "success"})
    assert states(github_server, pull.head_sha)[-1][0] == "success"
    # Her code ran in registry-check's validate job, each time, with no secret and no token; never in
    # registry-approvals.
    dumps = sorted(ran.iterdir())
    assert [dump.name.rsplit("-", 1)[0] for dump in dumps] == ["registry-check-validate"] * 3
    for dump in dumps:
        seen = dump.read_text()
        assert [value for value in (HF_SECRET, ACTIONS_TOKEN, FORK_TOKEN) if value in seen] == []
        assert "GITHUB_TOKEN" not in json.loads(seen)


FORGE_JOB = """
  forge:
    runs-on: ubuntu-latest
    permissions:
      statuses: write
    steps:
      - env:
          GITHUB_TOKEN: ${{ github.token }}
          SHA: ${{ github.event.pull_request.head.sha }}
        run: >-
          curl -sS -f -X POST -H "Authorization: token $GITHUB_TOKEN"
          -d '{"state": "success", "context": "regops/approvals", "description": "approved, says the PR"}'
          "$GITHUB_API_URL/repos/$GITHUB_REPOSITORY/statuses/$SHA"
"""


def test_a_pull_request_that_rewrites_the_check_and_the_policy_is_judged_by_main_s(
    act: Act, history_repo: Path, github_server: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """A branch of the repository (so its run's token can write) that asks for no approval for staging in
    regops.yaml and adds to registry-check.yml a job reporting `regops/approvals` as passed. Its own run does forge
    the status, as anyone who can push here could with their own token (hence code-owner review of .github/); but
    registry-approvals runs when that run ends, from main, with main's policy, and its answer replaces it."""
    git(history_repo, "checkout", "-q", "-b", "lax")
    config = history_repo / "registry/regops.yaml"
    config.write_text(config.read_text().replace("staging: {from: [dev], approvals: 1}", "staging: {from: [dev]}"))
    workflow = history_repo / ".github/workflows/registry-check.yml"
    workflow.write_text(workflow.read_text() + FORGE_JOB)
    run_regops(capsys, history_repo, *PROMOTE)
    pull = PullRequest.open(
        github_server, act.origin, history_repo, branch="lax", author="alice", title="lax", repository=REPO
    )

    run, decided = check(act, "pull_request", pull.opened(), pull, "alice")
    assert run.jobs == {"validate": "success", "forge": "success"}, run.log()
    assert decided.jobs == {"report": "success", "approvals": "failure"}, decided.log()
    assert states(github_server, pull.head_sha) == [
        ("success", "regops/approvals", "approved, says the PR"),
        # The move still needs bob; regops.yaml and the workflow need the admins (+1 more).
        ("failure", "regops/approvals", "sentiment@1.1.0 → staging: needs 1 more approval(s) from bob (+1 more)"),
    ]
    assert "staging: {from: [dev], approvals: 1}" in act.origin.show("main", "registry/regops.yaml")


def test_a_run_for_a_head_no_open_pull_request_has_any_more_sets_nothing(
    act: Act, staging_pr: PullRequest, history_repo: Path, github_server: GitHubFixture
) -> None:
    """alice pushed again before registry-approvals ran for her previous commit: that run finds no open pull
    request with that head, and leaves the decision to the run for the new one."""
    pull = staging_pr
    git(history_repo, "commit", "-q", "--allow-empty", "-m", "one more")
    git(history_repo, "push", "-q", "origin", pull.head_ref)
    github_server.set_head(REPO, pull.number, git(history_repo, "rev-parse", "HEAD").strip())

    decided = decide(act, pull, "pull_request", conclusion="success", actor="alice")
    assert decided.jobs == {"report": "success", "approvals": "success"}, decided.log()
    moved_on = f"no open pull request has head {pull.head_sha} (it moved on; the newer run decides)"
    assert moved_on in decided.output("approvals") and moved_on in decided.output("report")
    assert states(github_server, pull.head_sha) == []
    assert github_server.comments(REPO, pull.number) == []


@pytest.fixture
def hub_history_repo(
    hub_env: HfApi, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Path:
    """main: sentiment 1.0.0 in prod and 1.1.0 in dev, their weights on the local Hub (``storage: {backend: hf}``)."""
    repo = hf_repo(tmp_path)
    monkeypatch.chdir(repo)
    for version, out in (("1.0.0", "out-a"), ("1.1.0", "out-b")):
        weights(tmp_path / out, version)
        register(capsys, repo, tmp_path, out, "--version", version)
        if version == "1.0.0":
            to_prod(capsys, repo, "sentiment@1.0.0")
    run_regops(capsys, repo, "auto-promote", "--by", ACTIONS_BOT)
    return repo


def test_after_a_merge_the_sync_moves_the_hub_stamps_the_approval_and_commits_back_to_main(
    hub_history_repo: Path,
    hub_env: HfApi,
    github_server: GitHubFixture,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = hub_history_repo
    records = Registry.load(repo / "registry")
    revision = {v: records.version("sentiment", v).storage["revision"] for v in ("1.0.0", "1.1.0")}

    act = runner(github_server, repo, tmp_path)
    act.env |= {"HF_ENDPOINT": hub_env.endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    act.secrets |= {"HF_TOKEN": str(hub_env.token), "REGOPS_APP_PRIVATE_KEY": APP_PRIVATE_KEY}
    act.variables |= {"REGOPS_APP_ID": APP_ID}
    act.machine |= {
        "ACT_APP_ID": APP_ID,
        "ACT_APP_PRIVATE_KEY": APP_PRIVATE_KEY,
        "ACT_APP_TOKEN": github_server.app_token,
    }
    pull = promotion(act, github_server, repo, capsys, branch="promote-1.1.0", title=STAGING_TITLE)
    github_server.add_review(REPO, pull.number, "bob", "APPROVED")
    before = act.origin.sha("main")
    merge = act.origin.merge_pull(pull, merged_by="bob")
    github_server.merge(REPO, pull.number, merge, merged_by="bob")

    event = pushed(REPO, ref="refs/heads/main", before=before, after=merge, pusher="bob")
    run = act.run("push", "registry-sync.yml", event, sha=merge, actor="bob")
    assert run.jobs == {"sync": "success"}, run.log()
    assert [name.split("@")[0] for name in run.steps("sync")] == [
        "actions/create-github-app-token",
        "actions/checkout",
        "actions/setup-python",
        "pip install --require-hashes --no-deps -r .github/requirements.lock",
        "pip install --no-deps --no-build-isolation .",
        'regops auto-promote --by "github-actions[bot]"',
        "regops pr stamp --signing-key-env REGOPS_SIGNING_KEY",  # unsigned here: the registry signs nothing
        "regops sync",
        "regops retention apply",
        COMMIT_STEP,
        "regops retention apply (remove the hot copies main now records as moved)",
    ]
    output = run.output("sync")
    assert f"fixed: {HOT}: branch staging missing, expected {revision['1.1.0'][:12]} (sentiment@1.1.0)" in output
    assert f"sentiment@1.1.0: transition 1 approved in #{pull.number} by bob" in output
    assert "2 kept hot, 0 moved, 0 already cold" in output
    branches = {b.name: b.target_commit for b in hub_env.list_repo_refs(HOT).branches}
    assert (branches["prod"], branches["staging"], "dev" in branches) == (revision["1.0.0"], revision["1.1.0"], False)

    origin = act.origin.path
    assert git(origin, "rev-parse", "main^").strip() == merge, "one commit on top of the merge"
    assert git(origin, "log", "-1", "--format=%an|%s", "main").strip() == f"{ACTIONS_BOT}|{COMMIT_MESSAGE}"
    assert git(origin, "diff", "--name-only", merge, "main").split() == [
        "registry/models/sentiment/1.1.0.yaml",
        "serving.json",
    ]
    git(tmp_path, "clone", "-q", str(origin), "after")
    step = Registry.load(tmp_path / "after" / "registry").version("sentiment", "1.1.0").steps[-1]
    assert (step.to, step.by, step.pr, step.approved_by) == ("staging", "alice", pull.number, ("bob",))
    manifest = json.loads((tmp_path / "after" / "serving.json").read_text())
    assert manifest["models"]["sentiment"]["prod"]["version"] == "1.0.0"


def test_the_drift_job_keeps_one_issue_open_while_there_is_drift_and_closes_it(
    act: Act, history_repo: Path, github_server: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """drift.yml on its schedule: serving.json is missing on main, so it opens the issue (and the run fails, so the
    team notices); once sync's result is on main, the next run closes it."""
    schedule = {"schedule": "17 * * * *", "repository": {"full_name": REPO, "default_branch": "main"}}
    run = act.run("schedule", "drift.yml", schedule, sha=act.origin.sha("main"), actor=ACTIONS_BOT)
    assert run.jobs == {"drift": "failure"}, run.log
    issues = [i for i in github_server.client().get_repo(REPO).get_issues(state="all") if i.pull_request is None]
    assert [(i.title, i.state) for i in issues] == [("regops: drift from the registry", "open")]
    assert "- serving.json: the serving manifest is missing" in issues[0].body

    run_regops(capsys, history_repo, "sync")
    git(history_repo, "push", "-q", "origin", "main")
    run = act.run("schedule", "drift.yml", schedule, sha=act.origin.sha("main"), actor=ACTIONS_BOT)
    assert run.jobs == {"drift": "success"}, run.log
    assert github_server.client().get_repo(REPO).get_issue(issues[0].number).state == "closed"
