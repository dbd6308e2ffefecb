"""The whole road of one model version, with the real workflows run by act: trained, registered, dev, staging, prod.

A training job's bot dispatches ``model-trained``; register.yml uploads the weights to the Hub and commits the
candidate to main; registry-sync.yml, on that push, auto-promotes it to dev. alice opens the staging pull request
with ``regops promote --pr``; registry-approvals.yml (main's copy, run after each registry-check.yml run) holds it
until bob approves; the merge's sync moves the Hub's ``staging`` branch and stamps the approval on main. After a
passed canary, the prod pull request needs two owners' approvals (regops.yaml says so), and its merge's sync moves
the Hub's ``prod`` branch. Each step checks what people would see: the jobs' results, the commit statuses and the
one comment on GitHub, the Hub's refs through huggingface_hub, and the version file on the origin's main (``git
show``). How act, the origin and the local servers are set up is in tests/act.py; the workflows' own details are
checked in tests/test_act.py.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from huggingface_hub import HfApi

from tests.act import Act, PullRequest, Run, dispatched, pushed
from tests.conftest import commit, git, run_regops, weights
from tests.servers.github_fixtures import GitHubFixture
from tests.test_act import ACTIONS_BOT, APP_ID, APP_PRIVATE_KEY, REPO, check, runner, states
from tests.test_hub import HF_CONFIG, HOT, hf_repo
from tests.test_signing import SIGNING, ec_key

pytestmark = pytest.mark.act

TRAINING_BOT = "training-bot[bot]"
VERSION = "0.1.0-rc.1"  # the first version of a model, registered with --bump minor
REF = f"sentiment@{VERSION}"
VERSION_FILE = f"registry/models/sentiment/{VERSION}.yaml"
PROD_POLICY = ("prod: {from: [staging, archived], approvals: 1,", "prod: {from: [staging, archived], approvals: 2,")


def story_config() -> str:
    """The Hub registry of tests/test_hub.py, with two approvals for prod (and its canary still required)."""
    old, new = PROD_POLICY
    assert old in HF_CONFIG and "require_canary: true" in HF_CONFIG
    return HF_CONFIG.replace(old, new)


def registry_bot(act: Act, github: GitHubFixture, hub: HfApi) -> None:
    """The ``registry-bot`` environment: the Hub token and the GitHub App (whose token the stand-in hands out)."""
    act.env |= {"HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    act.secrets |= {"HF_TOKEN": str(hub.token), "REGOPS_APP_PRIVATE_KEY": APP_PRIVATE_KEY}
    act.variables |= {"REGOPS_APP_ID": APP_ID}
    act.machine |= {"ACT_APP_ID": APP_ID, "ACT_APP_PRIVATE_KEY": APP_PRIVATE_KEY, "ACT_APP_TOKEN": github.app_token}


def training_outputs(clone: Path) -> str:
    """A training run's outputs, committed to the repository and pushed (register.yml reads only files of its
    checkout); their folder, relative to the repository's top."""
    run = clone / "training" / "run-1"
    weights(run / "weights", "story")
    (run / "evals.json").write_text('{"accuracy": 0.93, "latency_ms": 41}')
    (run / "params.json").write_text('{"learning_rate": 3.0e-5, "epochs": 3}')
    commit(clone, "training run 1: weights, evals, params")
    git(clone, "push", "-q", "origin", "main")
    return "training/run-1"


def model_trained(run: str) -> dict[str, Any]:
    """What a training job sends when a run finishes (``repository_dispatch``): where its outputs are."""
    payload = {
        "model": "sentiment",
        "artifacts": f"{run}/weights",
        "evals": f"{run}/evals.json",
        "params": f"{run}/params.json",
        "dataset": "reviews@2025-09-08",
        "bump": "minor",
    }
    return dispatched(REPO, "model-trained", payload, sender=TRAINING_BOT)


def record(act: Act) -> dict[str, Any]:
    """The version file as it is on the origin's main."""
    return yaml.safe_load(act.origin.show("main", VERSION_FILE))  # type: ignore[no-any-return]


def hub_branches(hub: HfApi) -> dict[str, str]:
    return {b.name: b.target_commit for b in hub.list_repo_refs(HOT).branches}


def sync(act: Act, before: str, *, pusher: str) -> Run:
    """registry-sync on the push that moved main from ``before`` to its tip."""
    after = act.origin.sha("main")
    event = pushed(REPO, ref="refs/heads/main", before=before, after=after, pusher=pusher)
    run = act.run("push", "registry-sync.yml", event, sha=after, actor=pusher)
    assert run.jobs == {"sync": "success"}, run.log()
    return run


def merge(act: Act, github: GitHubFixture, pull: PullRequest, merged_by: str) -> str:
    """``merged_by`` presses Merge (a merge commit on main, on both sides); registry-sync runs on it; its output."""
    before = act.origin.sha("main")
    commit = act.origin.merge_pull(pull, merged_by=merged_by)
    github.merge(REPO, pull.number, commit, merged_by=merged_by)
    return sync(act, before, pusher=merged_by).output("sync")


def promote(
    act: Act, github: GitHubFixture, clone: Path, capsys: pytest.CaptureFixture[str], *, to: str, notes: str
) -> PullRequest:
    """alice, in her clone brought up to date, opens the pull request moving the version to ``to``."""
    git(clone, "pull", "-q", "--ff-only", "origin", "main")
    out = run_regops(capsys, clone, "promote", REF, "--to", to, "--notes", notes, "--by", "alice", "--pr")
    assert "opened pull request #" in out, out
    number = int(out.split("opened pull request #")[1].split(":")[0])
    return PullRequest.on_github(github, act.origin, REPO, number)


def reviewed(act: Act, github: GitHubFixture, pull: PullRequest, reviewer: str) -> Run:
    """``reviewer`` approves the head commit; registry-check runs on that review, and registry-approvals on its end:
    the registry-approvals run."""
    github.add_review(REPO, pull.number, reviewer, "APPROVED")
    run, decided = check(act, "pull_request_review", pull.reviewed(reviewer), pull, reviewer)
    assert run.jobs == {"validate": "success"}, run.log()
    return decided


def test_a_trained_model_goes_from_a_dispatch_through_dev_and_staging_to_prod(  # noqa: PLR0915 - one story
    hub_env: HfApi,
    github_server: GitHubFixture,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github, hub = github_server, hub_env
    github.add_team("acme", "ml", ["alice", "bob", "carol"], name="ML")  # carol joined: three owners can approve
    clone = hf_repo(tmp_path, story_config() + SIGNING)
    ec_key(tmp_path / "bot", "release")  # the registry trusts signing/release.pub; the bot holds the private key
    (clone / "signing").mkdir()
    (clone / "signing" / "release.pub").write_bytes((tmp_path / "bot" / "release.pub").read_bytes())
    commit(clone, "the registry's signing key")
    monkeypatch.chdir(clone)
    act = runner(github, clone, tmp_path)
    act.origin.report_pushes(github, REPO)
    registry_bot(act, github, hub)
    act.secrets |= {"REGOPS_SIGNING_KEY": (tmp_path / "bot" / "release.pem").read_text()}
    # alice's own shell: her token, this repository, the local GitHub.
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_API_URL", github.api_url)
    monkeypatch.setenv("GITHUB_TOKEN", github.alice_token)

    # 0. A dispatch naming files outside the job's checkout (here the outputs in alice's clone, a real folder of
    # weights on the runner) stores nothing: no upload, no commit.
    outputs = training_outputs(clone)
    before = act.origin.sha("main")
    stray = model_trained(outputs)
    stray["client_payload"]["artifacts"] = str(clone / outputs / "weights")
    run = act.run("repository_dispatch", "register.yml", stray, sha=before, actor=TRAINING_BOT)
    assert run.jobs == {"register": "failure"}, run.log()
    assert f"--artifacts {clone / outputs / 'weights'} resolves to" in run.output("register"), run.log()
    assert act.origin.sha("main") == before
    assert not hub.repo_exists(HOT), "nothing uploaded"

    # 1. The training bot dispatches model-trained: the weights go to the Hub, the candidate to main.
    run = act.run("repository_dispatch", "register.yml", model_trained(outputs), sha=before, actor=TRAINING_BOT)
    assert run.jobs == {"register": "success"}, run.log()
    assert git(act.origin.path, "log", "-1", "--format=%an|%s", "main").strip() == (
        f"{ACTIONS_BOT}|Register a new version of sentiment"
    )
    version = record(act)
    revision = version["artifacts"]["storage"]["revision"]
    assert (version["stage"], version["created_by"], version["artifacts"]["storage"]["repo"]) == (
        "candidate",
        TRAINING_BOT,
        HOT,
    )
    assert {t.name: t.target_commit for t in hub.list_repo_refs(HOT).tags} == {f"v{VERSION}": revision}
    # Signed with the registry's key (the secret), the bundle beside the weights in the version's Hub commit.
    public = (clone / "signing" / "release.pub").read_bytes()
    signature = version["artifacts"]["signature"]
    assert (signature["method"], signature["key"]) == ("key", f"sha256:{hashlib.sha256(public).hexdigest()}")
    assert hub.hf_hub_download(HOT, "model.sig", revision=revision)
    assert github.client().get_repo(REPO).get_commit("main").sha == act.origin.sha("main"), "GitHub saw the push"

    # 2. The sync on that push auto-promotes it to dev, and the Hub's dev branch points at its weights.
    run = sync(act, before, pusher=ACTIONS_BOT)
    assert record(act)["stage"] == "dev"
    assert [(t["from"], t["to"], t["by"]) for t in record(act)["transitions"]] == [("candidate", "dev", ACTIONS_BOT)]
    assert hub_branches(hub)["dev"] == revision, run.output("sync")

    # 3. alice opens the staging pull request from her clone.
    staging = promote(act, github, clone, capsys, to="staging", notes="ready for staging")
    assert (staging.author, staging.head_ref) == ("alice", f"regops/promote-sentiment-{VERSION}-staging")
    assert github.reviewers(REPO, staging.number) == ([], ["ml"])

    # 4. registry-check validates it; registry-approvals, from main, holds it until an owner approves the head commit.
    run, decided = check(act, "pull_request", staging.opened(), staging, "alice")
    assert run.jobs == {"validate": "success"}, run.log()
    assert decided.jobs == {"report": "success", "approvals": "failure"}, decided.log()
    assert states(github, staging.head_sha) == [
        ("failure", "regops/approvals", f"{REF} → staging: needs 1 more approval(s) from bob, carol")
    ]
    run = reviewed(act, github, staging, "bob")
    assert run.jobs == {"report": "success", "approvals": "success"}, run.log()
    assert states(github, staging.head_sha)[-1] == ("success", "regops/approvals", f"approved: {REF} → staging")
    [(author, comment)] = github.comments(REPO, staging.number)
    assert (author, "No problems." in comment, f"## `{REF}`: dev → staging" in comment) == (ACTIONS_BOT, True, True)

    # 5. bob merges; the sync moves the Hub's staging branch and stamps the approval on main.
    out = merge(act, github, staging, "bob")
    assert f"{REF}: transition 1 approved in #{staging.number} by bob" in out, out
    assert hub_branches(hub)["staging"] == revision
    assert "dev" not in hub_branches(hub), "dev has no holder any more"
    step = record(act)["transitions"][-1]
    assert (step["to"], step["by"], step["pr"], step["approved_by"]) == ("staging", "alice", staging.number, ["bob"])

    # 6. A passed canary, recorded on main; then the prod pull request needs two owners' approvals. (The sync that
    # the canary's push starts is left out, to save a run: the one after the prod merge does its work too.)
    git(clone, "pull", "-q", "--ff-only", "origin", "main")
    # Measured elsewhere, signed with the registry's key: from signing.required_from on, prod needs the attestation.
    key = str(tmp_path / "bot" / "release.pem")
    run_regops(
        capsys, clone, "canary", "record", REF, "--result", "passed", "--summary", "5% for a day", "--signing-key", key
    )
    git(clone, "push", "-q", "origin", "main")
    assert record(act)["canary"]["result"] == "passed"
    prod = promote(act, github, clone, capsys, to="prod", notes="canary held")
    run = reviewed(act, github, prod, "bob")
    assert run.jobs == {"report": "success", "approvals": "failure"}, run.log()
    assert "approved by: bob" in run.output("approvals")
    assert states(github, prod.head_sha) == [
        ("failure", "regops/approvals", f"{REF} → prod: needs 1 more approval(s) from carol")
    ]
    run = reviewed(act, github, prod, "carol")
    assert run.jobs == {"report": "success", "approvals": "success"}, run.log()
    assert states(github, prod.head_sha)[-1] == ("success", "regops/approvals", f"approved: {REF} → prod")
    assert len(github.comments(REPO, prod.number)) == 1
    assert "prod" not in hub_branches(hub), "nothing reaches prod before the merge"

    # 7. carol merges: the Hub's prod branch serves the version, and main records both approvals.
    out = merge(act, github, prod, "carol")
    assert f"{REF}: transition 2 approved in #{prod.number} by bob, carol" in out, out
    assert hub_branches(hub)["prod"] == revision
    step = record(act)["transitions"][-1]
    assert (step["to"], step["pr"], step["approved_by"]) == ("prod", prod.number, ["bob", "carol"])
    assert json.loads(act.origin.show("main", "serving.json"))["models"]["sentiment"]["prod"]["version"] == VERSION

    # 8. The chain behind prod holds: the weights, their signature, the stamped review, the passed canary.
    git(clone, "pull", "-q", "--ff-only", "origin", "main")
    out = run_regops(capsys, clone, "verify", "sentiment@prod")
    assert "review ok by bob, carol" in out and "canary ok" in out and out.rstrip().endswith("every link holds")
    # The sync workflow's stamps signed both reviews with the registry-bot environment's key; they are on main.
    steps = record(act)["transitions"]
    assert [(s["to"], s["attestation"]["path"]) for s in steps[1:]] == [
        ("staging", f"attestations/{VERSION}/review-1.sigstore.json"),
        ("prod", f"attestations/{VERSION}/review-2.sigstore.json"),
    ]
