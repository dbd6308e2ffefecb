"""`regops doctor` against the local GitHub server: `init` → edit → `validate` → `doctor`, a correctly configured
repository passing and each missing setting failing with the setting to change named."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from regops.cli import main
from tests.conftest import isolated_build
from tests.servers.github_fixtures import GitHubFixture

REPO = "acme/models"
APP_SLUG = "regops-app"
SECRETS = ("HF_TOKEN", "REGOPS_APP_PRIVATE_KEY")
APP_PERMISSIONS = {"contents": "write", "pull_requests": "write", "issues": "write", "statuses": "write"}


@pytest.fixture(scope="module")
def initialized(tmp_path_factory: pytest.TempPathFactory, git_template: Path) -> Path:
    """`regops init`, then the edit its README asks for (the App's bot under `bots:`), then `validate`: once per
    module (per worker), as every test would."""
    dest = tmp_path_factory.mktemp("initialized") / "acme-models"
    with isolated_build(tmp_path_factory.mktemp("doctor-home"), git_template), pytest.MonkeyPatch.context() as patch:
        assert main(["init", str(dest), "--org", "acme"]) == 0
        config = dest / "registry" / "regops.yaml"
        config.write_text(config.read_text().replace('bots: ["github-actions[bot]"]', f'bots: ["{APP_SLUG}[bot]"]'))
        patch.chdir(dest)
        assert main(["validate"]) == 0
    return dest


@pytest.fixture
def registry(initialized: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of its own of the initialized, validated repository, the current folder."""
    dest = Path(shutil.copytree(initialized, tmp_path / "acme-models", symlinks=True))
    monkeypatch.chdir(dest)
    return dest


@pytest.fixture
def github(github_server: GitHubFixture, monkeypatch: pytest.MonkeyPatch) -> GitHubFixture:
    """The repository set up as the README says: protected main, the registry-bot environment, the App installed;
    doctor runs with the token of alice, a repository admin and an owner of the organization."""
    server = github_server
    server.add_collaborator(REPO, "alice", "admin")
    server.add_org_owner("acme", "alice")
    server.protect_branch(REPO, "main")
    server.add_environment(REPO, "registry-bot", branches=["main"], secrets=SECRETS, variables={"REGOPS_APP_ID": "1"})
    server.install_app("acme", APP_SLUG, APP_PERMISSIONS)
    monkeypatch.setenv("GITHUB_API_URL", server.api_url)
    monkeypatch.setenv("GITHUB_TOKEN", server.alice_token)
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    return server


def doctor(capsys: pytest.CaptureFixture[str], *args: str, code: int) -> str:
    assert main(["doctor", "--repo", REPO, *args]) == code
    captured = capsys.readouterr()
    return captured.out + captured.err


def failures(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith("FAIL")]


def failed_checks(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The names of the checks that failed, from `doctor --json`."""
    return [finding["check"] for finding in json.loads(doctor(capsys, "--json", code=1)) if not finding["ok"]]


def test_a_correctly_configured_repository_passes(
    registry: Path, github: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    out = doctor(capsys, code=0)

    assert failures(out) == []
    for check in (
        "main: requires regops/approvals",
        "main: blocks force pushes",
        "environment registry-bot: main only",
        "secret HF_TOKEN",
        "variable REGOPS_APP_ID",
        f"GitHub App {APP_SLUG}[bot]: permissions",
        ".github/workflows/registry-check.yml",
        "CODEOWNERS",
    ):
        assert f"ok    {check}: " in out, check
    assert "secret PROMETHEUS_TOKEN" not in out  # the canary reads no metrics token in this regops.yaml
    assert out.endswith("every setting the approvals gate relies on is in place\n")
    assert {request.method for request in github.requests} == {"GET"}  # doctor only reads


def _unprotected(gh: GitHubFixture, _: Path) -> None:
    gh._repo(REPO).protection.clear()


def _stale_workflow(_: GitHubFixture, repo: Path) -> None:
    path = repo / ".github" / "workflows" / "registry-approvals.yml"
    path.write_text(path.read_text().replace("regops pr check", "true # regops pr check"))


def _codeowners(_: GitHubFixture, repo: Path) -> None:
    (repo / ".github" / "CODEOWNERS").write_text("* @acme/everyone\n")


def _environment(**changes: object) -> Callable[[GitHubFixture, Path], None]:
    def change(gh: GitHubFixture, _: Path) -> None:
        settings: dict[str, object] = {"branches": ["main"], "secrets": SECRETS, "variables": {"REGOPS_APP_ID": "1"}}
        gh.add_environment(REPO, "registry-bot", **(settings | changes))  # type: ignore[arg-type]

    return change


BROKEN = {
    "no protection": (
        _unprotected,
        "main: protected",
        "`main` has no branch protection and no ruleset: anyone with push access merges around the approvals check",
    ),
    "check not required": (
        lambda gh, _: gh.protect_branch(REPO, "main", checks=["validate"]),
        "main: requires regops/approvals",
        "Settings → Branches (or Settings → Rules → Rulesets), the rule for `main`: turn on “Require status checks "
        "to pass” with `regops/approvals`",
    ),
    "no reviews": (
        lambda gh, _: gh.protect_branch(REPO, "main", approvals=None),
        "main: requires reviews",
        "turn on “Require a pull request before merging” with 1+ approvals",
    ),
    "force pushes allowed": (
        lambda gh, _: gh.protect_branch(REPO, "main", force_pushes=True),
        "main: blocks force pushes",
        "turn off “Allow force pushes”",
    ),
    "deletion allowed": (
        lambda gh, _: gh.protect_branch(REPO, "main", deletions=True),
        "main: blocks deletion",
        "turn off “Allow deletions”",
    ),
    "admins bypass": (
        lambda gh, _: gh.protect_branch(REPO, "main", enforce_admins=False),
        "main: no bypass",
        "turn on “Do not allow bypassing the above settings” (enforce_admins",
    ),
    "environment unrestricted": (
        _environment(branches=None),
        "environment registry-bot: main only",
        "Settings → Environments → registry-bot: “Deployment branches and tags” → “Selected branches and tags”, "
        "only `main` (now: every branch)",
    ),
    "environment admits other branches": (
        _environment(branches=["main", "release/*"]),
        "environment registry-bot: main only",
        "only `main` (now: branches `main`, `release/*`)",
    ),
    "environment on protected branches": (
        _environment(branches=None, protected_branches=True),
        "environment registry-bot: main only",
        "(now: every protected branch)",
    ),
    "a secret missing": (
        _environment(secrets=["REGOPS_APP_PRIVATE_KEY"]),
        "secret HF_TOKEN",
        "Settings → Environments → registry-bot: add the environment secret `HF_TOKEN` (the workflows read it)",
    ),
    "a variable missing": (
        _environment(variables={}),
        "variable REGOPS_APP_ID",
        "add the environment variable `REGOPS_APP_ID`",
    ),
    "app lacks a permission": (
        lambda gh, _: (
            gh._github.installations.update(acme=[])
            or gh.install_app("acme", APP_SLUG, {"contents": "read", "pull_requests": "write"})
        ),
        f"GitHub App {APP_SLUG}[bot]: permissions",
        "the App's settings → Permissions: grant Contents: Read and write, then accept them on the installation",
    ),
    "app not installed": (
        lambda gh, _: gh._github.installations.update(acme=[]),
        "GitHub App installed",
        f"no installed GitHub App is one of regops.yaml's bots ({APP_SLUG}[bot]; installed: none): install the "
        "registry's App on the organization and list its login `<app-slug>[bot]` under `bots:`",
    ),
    "stale workflow": (
        _stale_workflow,
        ".github/workflows/registry-approvals.yml",
        "stale: not what regops 0.1.0 writes; run `regops init --upgrade` and commit it",
    ),
    "stale CODEOWNERS": (
        _codeowners,
        "CODEOWNERS",
        "stale: run `regops codeowners` and commit .github/CODEOWNERS",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_missing_setting_fails_naming_its_fix(
    case: str, registry: Path, github: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    breaks, check, fix = BROKEN[case]
    breaks(github, registry)

    out = doctor(capsys, code=1)

    assert failures(out), out
    (failed,) = failures(out)[:1] if case == "no protection" else failures(out)
    assert failed.startswith(f"FAIL  {check}: "), out
    assert fix in failed, failed
    assert out.endswith(f"{len(failures(out))} setting(s) to fix\n")


def test_no_protection_fails_every_branch_setting(
    registry: Path, github: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    _unprotected(github, registry)
    assert failed_checks(capsys) == [
        "main: protected",
        "main: requires regops/approvals",
        "main: requires reviews",
        "main: blocks force pushes",
        "main: blocks deletion",
        "main: no bypass",
    ]


def test_a_missing_environment_fails_with_its_secrets(
    registry: Path, github: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    github._repo(REPO).environments.clear()
    assert failed_checks(capsys) == [
        "environment registry-bot",
        "secret HF_TOKEN",
        "secret REGOPS_APP_PRIVATE_KEY",
        "variable REGOPS_APP_ID",
    ]
    out = doctor(capsys, code=1)
    assert "no environment `registry-bot`: create it in Settings → Environments, deployable from `main` only" in out


def test_the_metrics_token_is_required_once_the_canary_reads_one(
    registry: Path, github: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    config = registry / "registry" / "regops.yaml"
    config.write_text(
        config.read_text().replace(
            "  confidence: 0.95\n",
            "  confidence: 0.95\n  metrics: {provider: prometheus, url: 'http://prom:9090', token_env: PROMETHEUS_TOKEN}\n"
            "  allowed_token_envs: [PROMETHEUS_TOKEN]\n",
        )
    )
    assert failed_checks(capsys) == ["secret PROMETHEUS_TOKEN"]


def test_the_signing_key_is_required_once_signing_trusts_keys(
    registry: Path, github: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    config = registry / "registry" / "regops.yaml"
    config.write_text(config.read_text() + "signing:\n  required_from: staging\n  keys: [keys/registry.pub]\n")
    assert failed_checks(capsys) == ["secret REGOPS_SIGNING_KEY"]


RULES = [
    {
        "type": "required_status_checks",
        "parameters": {
            "strict_required_status_checks_policy": False,
            "required_status_checks": [{"context": "regops/approvals"}],
        },
    },
    {
        "type": "pull_request",
        "parameters": {
            "required_approving_review_count": 1,
            "dismiss_stale_reviews_on_push": True,
            "require_code_owner_review": True,
            "require_last_push_approval": False,
            "required_review_thread_resolution": False,
        },
    },
    {"type": "non_fast_forward"},
    {"type": "deletion"},
]


def test_a_ruleset_instead_of_branch_protection_passes(
    registry: Path, github: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    _unprotected(github, registry)
    github.add_ruleset(REPO, "registry", ["main"], RULES)
    assert failures(doctor(capsys, code=0)) == []


def test_a_ruleset_with_a_bypass_list_fails(
    registry: Path, github: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    _unprotected(github, registry)
    admin = {"actor_id": 5, "actor_type": "RepositoryRole", "bypass_mode": "always"}
    github.add_ruleset(REPO, "registry", ["main"], RULES[:3], bypass_actors=[admin])
    assert failed_checks(capsys) == ["main: blocks deletion", "main: no bypass"]  # no deletion rule; the bypass list


def test_json_output(registry: Path, github: GitHubFixture, capsys: pytest.CaptureFixture[str]) -> None:
    github.protect_branch(REPO, "main", force_pushes=True)
    findings = json.loads(doctor(capsys, "--json", code=1))
    failed = [f for f in findings if not f["ok"]]
    assert [f["check"] for f in failed] == ["main: blocks force pushes"]
    assert set(failed[0]) == {"check", "ok", "message"}


def test_a_token_without_admin_rights_is_told_which(
    registry: Path, github: GitHubFixture, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", github.bob_token)  # write access, not admin
    out = doctor(capsys, code=1)
    assert (
        "regops: error: cannot read the protection of branch main of acme/models: the token lacks permission (403"
        in out
    )
    assert {request.method for request in github.requests} == {"GET"}
