"""canary.yml run for real by act, against a real Prometheus, the local GitHub and a local origin.

sentiment 1.0.0 serves prod and 1.1.0 is in staging, its canary started two hours ago (tests/test_canary_check.py
stages it); Prometheus holds an hour of both versions' traffic. On its schedule the workflow records the verdict on
main and opens the pull request the verdict calls for: the prod promotion on a pass, which still waits for an
owner's approval (registry-check and registry-approvals run on it as GitHub would start them), or the one taking
the version out of staging on a fail. A second run opens nothing new. It does so in two steps: `regops canary check`
(holding the metrics token only) records the verdict, `regops canary pr` (holding the app token only) pushes it and
opens the pull request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.act import Act, PullRequest, Run
from tests.servers.github_fixtures import APP, GitHubFixture
from tests.servers.prometheus import Arm, StartPrometheus, traffic_openmetrics
from tests.test_act import ACTIONS_BOT, APP_ID, APP_PRIVATE_KEY, REPO, check, runner, states
from tests.test_canary_check import ERRORS_3X, HEALTHY, REF, START, VERSION_FILE, stage_canary
from tests.test_workflows import load

pytestmark = pytest.mark.act

SCHEDULE = {"schedule": "7,22,37,52 * * * *", "repository": {"full_name": REPO, "default_branch": "main"}}
CHECK_STEP, PR_STEP = "regops canary check --signing-key-env REGOPS_SIGNING_KEY", "regops canary pr"


def canary_bot(act: Act, github: GitHubFixture) -> None:
    """The ``registry-bot`` environment as canary.yml needs it: the GitHub App (the stand-in hands out its token)."""
    act.secrets |= {"REGOPS_APP_PRIVATE_KEY": APP_PRIVATE_KEY}
    act.variables |= {"REGOPS_APP_ID": APP_ID}
    act.machine |= {"ACT_APP_ID": APP_ID, "ACT_APP_PRIVATE_KEY": APP_PRIVATE_KEY, "ACT_APP_TOKEN": github.app_token}


@pytest.fixture
def staged(
    history_repo: Path,
    prometheus: StartPrometheus,
    github_server: GitHubFixture,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Callable[[tuple[Arm, ...]], Act]:
    """The canary staged against a Prometheus serving the arms given, published; act ready to run canary.yml."""

    def stage(arms: tuple[Arm, ...]) -> Act:
        url = prometheus(traffic_openmetrics(*arms, start=START))
        stage_canary(history_repo, capsys, f"{{provider: prometheus, url: {json.dumps(url)}}}")
        act = runner(github_server, history_repo, tmp_path)
        act.origin.report_pushes(github_server, REPO)
        canary_bot(act, github_server)
        return act

    return stage


def scheduled(act: Act) -> Run:
    return act.run("schedule", "canary.yml", SCHEDULE, sha=act.origin.sha("main"), actor=ACTIONS_BOT)


def recorded(act: Act) -> dict[str, Any]:
    """The canary record of the version file as it is on the origin's main."""
    return yaml.safe_load(act.origin.show("main", str(VERSION_FILE)))["canary"]  # type: ignore[no-any-return]


def the_pull(github: GitHubFixture) -> Any:
    [pull] = list(github.client().get_repo(REPO).get_pulls(state="all"))
    return pull


def test_a_healthy_canary_is_recorded_and_opens_the_prod_pr_which_still_needs_an_owner(
    staged: Callable[[tuple[Arm, ...]], Act], github_server: GitHubFixture
) -> None:
    github = github_server
    act = staged(HEALTHY)

    run = scheduled(act)
    assert run.jobs == {"check": "success"}, run.log()
    assert (run.steps("check")[CHECK_STEP], run.steps("check")[PR_STEP]) == ("success", "success"), run.log()
    canary = recorded(act)
    assert canary["result"] == "passed", canary
    rate = next(m for m in canary["report"] if m["metric"] == "error_rate")
    assert rate["verdict"] == "pass"
    assert rate["n_canary"] == pytest.approx(6_000, rel=0.01) and rate["n_prod"] == pytest.approx(114_000, rel=0.01)
    assert rate["canary"] == pytest.approx(0.0005, rel=0.01)
    assert rate["upper"] <= 0.10 and rate["method"].startswith("normal-mixture") and rate["looks"] == 1

    pull = the_pull(github)
    assert (pull.title, pull.head.ref, pull.user.login) == (
        f"Promote {REF} to prod: canary passed",
        "regops/canary-sentiment-1.1.0-prod",
        APP,
    )
    assert pull.body.startswith(f"### Canary: `{REF}` (canary) vs prod `1.0.0`: pass"), pull.body
    assert "| error_rate | rate | pass | 0.05% | 0.50% |" in pull.body
    branch_file = yaml.safe_load(act.origin.show(pull.head.ref, str(VERSION_FILE)))
    step = branch_file["transitions"][-1]
    assert (step["from"], step["to"], step["by"]) == ("staging", "prod", "alice"), "the person who staged it"

    # The approvals check judges it like any prod promotion: nothing counts until an owner approves.
    opened = PullRequest.on_github(github, act.origin, REPO, pull.number)
    _, decided = check(act, "pull_request", opened.opened(), opened, APP)
    assert decided.jobs["approvals"] == "failure", decided.log()
    [(state, context, description)] = states(github, opened.head_sha)
    assert (state, context) == ("failure", "regops/approvals")
    assert f"{REF} → prod: needs 1 more approval(s) from " in description, description
    github.add_review(REPO, opened.number, "bob", "APPROVED")
    _, decided = check(act, "pull_request_review", opened.reviewed("bob"), opened, "bob")
    assert states(github, opened.head_sha)[-1] == (
        "success",
        "regops/approvals",
        f"approved: sentiment@1.0.0 → archived, {REF} → prod",
    )

    # The next scheduled run checks again, and opens nothing new.
    run = scheduled(act)
    assert run.jobs == {"check": "success"}, run.log()
    assert f"#{pull.number} (open) already proposes this" in run.output("check")
    assert the_pull(github).number == pull.number


def test_a_canary_with_three_times_the_errors_opens_the_rollback_pr(
    staged: Callable[[tuple[Arm, ...]], Act], github_server: GitHubFixture
) -> None:
    github = github_server
    act = staged(ERRORS_3X)

    run = scheduled(act)
    assert run.jobs == {"check": "failure"}, "a failed canary turns the run red, PR or not"
    # The check step fails (red run); the PR step runs all the same and opens the rollback PR.
    assert (run.steps("check")[CHECK_STEP], run.steps("check")[PR_STEP]) == ("failure", "success"), run.log()
    assert recorded(act)["result"] == "failed"
    pull = the_pull(github)
    assert (pull.title, pull.head.ref) == (
        f"Take {REF} out of staging: canary failed",
        "regops/canary-sentiment-1.1.0-rollback",
    )
    # increase() over the two hours since the canary started extrapolates the hour of samples by a few seconds.
    assert re.search(r"\| error_rate \| rate \| fail \| 1\.[45]\d% \| 0\.50% \|", pull.body), pull.body
    step = yaml.safe_load(act.origin.show(pull.head.ref, str(VERSION_FILE)))["transitions"][-1]
    assert (step["from"], step["to"], step["by"]) == ("staging", "archived", ACTIONS_BOT)


def test_the_check_step_holds_only_the_metrics_token_and_the_pr_step_only_the_app_token() -> None:
    [job] = load("canary.yml")["jobs"].values()
    by_command = {step["run"]: step for step in job["steps"] if "run" in step}
    assert by_command[CHECK_STEP]["env"] == {
        "PROMETHEUS_TOKEN": "${{ secrets.PROMETHEUS_TOKEN }}",
        "REGOPS_SIGNING_KEY": "${{ secrets.REGOPS_SIGNING_KEY }}",  # signs the verdict's attestation
    }
    assert "if" not in by_command[CHECK_STEP]
    assert by_command[PR_STEP]["env"] == {"GITHUB_TOKEN": "${{ steps.app-token.outputs.token }}"}
    assert by_command[PR_STEP]["if"] == "${{ !cancelled() }}", "a failed check still opens its rollback PR"
    commands = [step.get("run") for step in job["steps"]]
    assert commands.index(CHECK_STEP) + 1 == commands.index(PR_STEP) == len(commands) - 1
