"""Where the canary reads metrics, and which token it sends there: regops.yaml's to say, never a model's.

A metrics server here is a local HTTP server that records every request (tests/test_metrics.py's ``Local``):
what it received is the evidence. It serves a document in which the canary clearly passes, as a hostile server
would, so a request that reached it would turn into a recorded pass. sentiment 1.1.0 is staged as in
tests/test_canary_check.py; the registry's own metrics are a file in which the canary fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from regops.canary import settings
from regops.cli import main
from tests.conftest import commit, copy_history, git, isolated_build
from tests.servers.github_fixtures import GitHubFixture
from tests.test_canary_check import (
    NOW,
    REF,
    VERSION_FILE,
    canary,
    check,
    metrics_document,
    stage_canary,
)
from tests.test_github import REPO, with_origin
from tests.test_metrics import TOKEN, Local, local_server

PASSING = json.dumps(metrics_document(canary_errors=2)).encode()
FAILING = json.dumps(metrics_document(canary_errors=60))
MODEL_FILE = Path("registry/models/sentiment/model.yaml")
CONFIG_FILE = Path("registry/regops.yaml")


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[Local]:
    """A metrics server answering the passing document to a request bearing ``TOKEN``, which GITHUB_TOKEN holds."""
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with local_server() as state:
        state.routes["/metrics.json"] = PASSING
        yield state


FILE_SOURCE = "{provider: json, path: metrics.json}"


def staged(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The canary staged, reading the registry's own document (in which it fails) as regops.yaml says."""
    (repo / "metrics.json").write_text(FAILING)
    stage_canary(repo, capsys, FILE_SOURCE)


class _Swallowed:
    """Where :func:`staged` reads a run's output, for a template: :func:`isolated_build` swallowed it already."""

    def readouterr(self) -> tuple[str, str]:
        return "", ""


@pytest.fixture(scope="module")
def _staged_template(_history_template: Path, tmp_path_factory: pytest.TempPathFactory, git_template: Path) -> Path:
    """The history repository with the canary :func:`staged`, once per module (per worker); tests get copies."""
    folder = tmp_path_factory.mktemp("staged-template")
    with isolated_build(tmp_path_factory.mktemp("staged-home"), git_template), pytest.MonkeyPatch.context() as patch:
        repo = copy_history(_history_template, folder)
        patch.chdir(repo)
        staged(repo, _Swallowed())  # type: ignore[arg-type]
    return folder


@pytest.fixture
def staged_repo(_staged_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of its own of the staged history repository, the current folder."""
    repo = copy_history(_staged_template, tmp_path)
    monkeypatch.chdir(repo)
    return repo


def configure(repo: Path, source: dict[str, str], allowed: list[str]) -> None:
    """regops.yaml reads metrics from ``source``, its token variable one of ``allowed`` (no list: none)."""
    config = repo / CONFIG_FILE
    text = config.read_text().replace(f"metrics: {FILE_SOURCE}", f"metrics: {json.dumps(source)}")
    config.write_text(text + (f"  allowed_token_envs: {json.dumps(allowed)}\n" if allowed else ""))
    commit(repo, "the canary reads a metrics server")


def validate(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """validate's problem lines (it must exit 1)."""
    assert main(["validate"]) == 1
    return capsys.readouterr().out.splitlines()


def problem(lines: list[str], path: Path, field: str) -> str:
    """The message of the one problem at ``path`` (``file:line:col: field: message``) on ``field``."""
    [found] = [line for line in lines if line.startswith(f"{path}:") and f": {field}: " in line]
    return found.split(f": {field}: ", 1)[1]


# --- a model.yaml cannot choose the metrics source --------------------------------------------------------


def test_a_model_yaml_pointing_the_canary_at_its_own_server_with_the_github_token_gets_nothing(
    staged_repo: Path, server: Local, capsys: pytest.CaptureFixture[str]
) -> None:
    hostile = {"provider": "json", "url": f"{server.url}/metrics.json", "token_env": "GITHUB_TOKEN"}
    with (staged_repo / MODEL_FILE).open("a") as handle:
        handle.write(f"canary:\n  metrics: {json.dumps(hostile)}\n")
    commit(staged_repo, "the canary reads our metrics now")
    before = (staged_repo / VERSION_FILE).read_bytes()

    code = main(["canary", "check", "--now", NOW])
    out, err = capsys.readouterr()
    assert server.paths == [] and server.authorizations == [], "the server received nothing, least of all the token"
    assert canary(staged_repo)["result"] == "pending"
    assert (staged_repo / VERSION_FILE).read_bytes() == before, "nothing recorded, no pass"
    assert code == 1 and "canary.metrics" in out + err, out + err

    message = problem(validate(capsys), MODEL_FILE, "canary.metrics")
    assert message == (
        "a model cannot choose where the canary reads metrics or which token it sends: set canary.metrics in "
        "registry/regops.yaml (admin-protected) and remove it here"
    )


def test_a_model_may_still_override_its_guardrails_and_thresholds_but_never_the_source(tmp_path: Path) -> None:
    registry = {
        "confidence": 0.95,
        "min_requests": 1000,
        "min_duration_minutes": 60,
        "metrics": {"provider": "json", "path": "metrics.json"},
        "allowed_token_envs": ["PROMETHEUS_TOKEN"],
        "guardrails": [{"metric": "error_rate", "kind": "rate", "max_increase": "10%"}],
    }
    model = {
        "min_requests": 50,
        "metrics": {"provider": "json", "url": "http://127.0.0.1:1/m.json", "token_env": "GITHUB_TOKEN"},
        "allowed_token_envs": ["GITHUB_TOKEN"],
        "guardrails": [{"metric": "latency", "kind": "latency", "max": "250ms"}],
    }
    merged = settings(registry, model)
    assert merged.metrics == registry["metrics"]
    assert merged.allowed_token_envs == ("PROMETHEUS_TOKEN",)
    assert merged.min_requests == 50
    assert [rail["metric"] for rail in merged.guardrails] == ["latency"]


# --- regops.yaml: the token's variable is allowed, and never a GitHub or Hub credential ----------------------


CREDENTIAL = "holds a GitHub or Hub credential, which regops never sends to a metrics server"
UNLISTED = "is not in canary.allowed_token_envs of regops.yaml"


@pytest.mark.parametrize(
    ("token_env", "allowed", "field", "message"),
    [
        ("GITHUB_TOKEN", [], "canary.metrics.token_env", f"GITHUB_TOKEN {CREDENTIAL}"),
        ("HF_TOKEN", [], "canary.metrics.token_env", f"HF_TOKEN {CREDENTIAL}"),
        (
            "GITHUB_TOKEN",
            ["GITHUB_TOKEN", "PROMETHEUS_TOKEN"],
            "canary.allowed_token_envs[0]",
            f"GITHUB_TOKEN {CREDENTIAL}",
        ),
        ("HF_TOKEN", ["PROMETHEUS_TOKEN", "HF_TOKEN"], "canary.allowed_token_envs[1]", f"HF_TOKEN {CREDENTIAL}"),
        (
            "METRICS_TOKEN",
            ["PROMETHEUS_TOKEN"],
            "canary.metrics.token_env",
            f"METRICS_TOKEN {UNLISTED} (listed: PROMETHEUS_TOKEN)",
        ),
        ("METRICS_TOKEN", [], "canary.metrics.token_env", f"METRICS_TOKEN {UNLISTED} (listed: none)"),
    ],
    ids=["github", "hub", "github-even-listed", "hub-even-listed", "not-on-the-allow-list", "no-allow-list"],
)
def test_regops_yaml_cannot_send_a_credential_or_an_unlisted_token_to_its_metrics_server(  # noqa: PLR0917 - the table
    staged_repo: Path,
    server: Local,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    token_env: str,
    allowed: list[str],
    field: str,
    message: str,
) -> None:
    monkeypatch.setenv(token_env, TOKEN)
    source = {"provider": "json", "url": f"{server.url}/metrics.json", "token_env": token_env}
    configure(staged_repo, source, allowed)

    out = check(capsys, code=1)
    assert server.paths == [] and server.authorizations == [], "no request, with the token or without"
    assert canary(staged_repo)["result"] == "inconclusive"
    assert f"{REF} (canary) vs prod 1.0.0: inconclusive" in out, out
    assert f"canary.metrics.token_env refused: {message}" in out, out

    lines = validate(capsys)
    assert problem(lines, CONFIG_FILE, field).startswith(message), lines
    if token_env in allowed:
        assert problem(lines, CONFIG_FILE, "canary.metrics.token_env").startswith(message), lines


def test_an_allowed_token_goes_to_the_configured_server_and_decides_the_verdict(
    staged_repo: Path, server: Local, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PROMETHEUS_TOKEN", TOKEN)
    source = {"provider": "json", "url": f"{server.url}/metrics.json", "token_env": "PROMETHEUS_TOKEN"}
    configure(staged_repo, source, ["PROMETHEUS_TOKEN"])
    assert main(["validate"]) == 0, capsys.readouterr().out
    assert f"{REF} (canary) vs prod 1.0.0: pass" in check(capsys)
    assert server.authorizations == [f"Bearer {TOKEN}"]
    assert canary(staged_repo)["result"] == "passed"


# --- the check and the pull requests are two processes ------------------------------------------------------


def test_the_pr_step_reads_no_metrics_and_opens_the_pull_request_the_recorded_verdict_calls_for(
    staged_repo: Path,
    server: Local,
    gh: GitHubFixture,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PROMETHEUS_TOKEN", TOKEN)
    source = {"provider": "json", "url": f"{server.url}/metrics.json", "token_env": "PROMETHEUS_TOKEN"}
    configure(staged_repo, source, ["PROMETHEUS_TOKEN"])
    origin = with_origin(staged_repo, gh)
    main_before = git(origin, "rev-parse", "main")

    # The check records the verdict and nothing else: no commit, no push, no pull request.
    assert "pass" in check(capsys)
    assert len(server.paths) == 1
    assert git(origin, "rev-parse", "main") == main_before
    assert gh.client().get_repo(REPO).get_pulls(state="all").totalCount == 0
    assert main(["canary", "check", "--open-pr"]) == 2, "one process never holds both tokens"
    capsys.readouterr()

    # The PR step holds no metrics token and asks the server nothing.
    monkeypatch.delenv("PROMETHEUS_TOKEN")
    assert main(["canary", "pr"]) == 0
    out = capsys.readouterr().out
    assert "pull request: opened #1" in out, out
    assert len(server.paths) == 1, "the PR step read no metrics"
    assert yaml.safe_load(git(origin, "show", f"main:{VERSION_FILE}"))["canary"]["result"] == "passed"
    pull = gh.client().get_repo(REPO).get_pull(1)
    assert pull.title == f"Promote {REF} to prod: canary passed"
    assert "| error_rate | rate | pass | 0.01% | 0.10% |" in pull.body, pull.body


def test_the_pr_step_opens_nothing_for_a_pending_canary(
    staged_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    origin = with_origin(staged_repo, gh)
    main_before = git(origin, "rev-parse", "main")
    assert main(["canary", "pr"]) == 0
    out = capsys.readouterr().out
    assert f"{REF} (canary) vs prod 1.0.0: pending" in out, out
    assert git(origin, "rev-parse", "main") == main_before, "nothing changed, nothing pushed"
    assert gh.client().get_repo(REPO).get_pulls(state="all").totalCount == 0
