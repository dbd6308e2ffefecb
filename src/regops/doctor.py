"""``regops doctor``: the GitHub settings the approvals gate relies on, checked one by one.

Nothing in git can enforce them (README, "Security model"): branch protection or a ruleset on every protected
branch requiring ``regops/approvals`` and reviews, with no force pushes, no deletions and no bypass; the
``registry-bot`` environment deployable from the default branch only and holding the secrets the workflows read; the
App installed with the permissions the workflows ask its token for; the workflows as this regops version pins them;
CODEOWNERS current. The rules here are pure: :mod:`regops.adapters.github` reads the settings into the dataclasses
below, and each check returns a :class:`Finding` that names the exact setting to change.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Final

from regops.approvals import CONTEXT

__all__ = [
    "ENVIRONMENT",
    "OPTIONAL_SECRETS",
    "BranchRules",
    "Environment",
    "Finding",
    "Installation",
    "WorkflowNeeds",
    "app_findings",
    "branch_findings",
    "environment_findings",
    "workflow_needs",
]

ENVIRONMENT: Final = "registry-bot"
# Secrets the workflows pass on, needed only when regops.yaml says they are: the canary's metrics token, and the
# register job's signing key (when `signing:` trusts keys; keyless signing needs none).
OPTIONAL_SECRETS: Final = frozenset({"PROMETHEUS_TOKEN", "REGOPS_SIGNING_KEY"})
_SECRET = re.compile(r"\$\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_VARIABLE = re.compile(r"\$\{\{\s*vars\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_APP_PERMISSION = re.compile(r"^\s*permission-([a-z-]+):\s*(read|write)\s*$", re.MULTILINE)
_LEVELS: Final = {"read": 1, "write": 2}
_SETTINGS: Final = "Settings → Branches (or Settings → Rules → Rulesets)"


@dataclass(frozen=True)
class Finding:
    """One setting checked: ``ok``, and what was found (with the setting to change when it is not)."""

    check: str
    ok: bool
    message: str


@dataclass(frozen=True)
class BranchRules:
    """What GitHub enforces on a branch, from its classic protection and every ruleset targeting it together."""

    protected: bool
    checks: frozenset[str] = frozenset()
    approvals: int = 0
    force_pushes: bool = True
    deletions: bool = True
    admins_bypass: bool = True


@dataclass(frozen=True)
class Environment:
    """A deployment environment: the branches it admits (``None``: any branch) and its secrets' and variables'
    names."""

    name: str
    branches: tuple[str, ...] | None
    protected_branches: bool
    secrets: frozenset[str]
    variables: frozenset[str]


@dataclass(frozen=True)
class Installation:
    """A GitHub App installed on the organization: its bot's login and the permissions it was granted."""

    login: str
    permissions: Mapping[str, str]


@dataclass(frozen=True)
class WorkflowNeeds:
    """What the pinned workflows read: secrets, variables, and the permissions they ask the App's token for."""

    secrets: frozenset[str]
    variables: frozenset[str]
    app_permissions: Mapping[str, str]


def workflow_needs(workflows: Mapping[str, str]) -> WorkflowNeeds:
    """Read from the workflows' text: every ``secrets.X``, every ``vars.X``, and the highest level of each
    ``permission-X`` asked of ``actions/create-github-app-token``."""
    texts = list(workflows.values())
    permissions: dict[str, str] = {}
    for text in texts:
        for name, level in _APP_PERMISSION.findall(text):
            key = name.replace("-", "_")
            if _LEVELS[level] > _LEVELS.get(permissions.get(key, ""), 0):
                permissions[key] = level
    return WorkflowNeeds(
        frozenset(name for text in texts for name in _SECRET.findall(text)),
        frozenset(name for text in texts for name in _VARIABLE.findall(text)),
        permissions,
    )


def branch_findings(branch: str, rules: BranchRules) -> Iterator[Finding]:
    """Branch protection (or a ruleset) on ``branch``: ``regops/approvals`` required, reviews required, no force
    pushes, no deletions, nobody bypassing."""
    where = f"{_SETTINGS}, the rule for `{branch}`"
    if not rules.protected:
        yield Finding(
            f"{branch}: protected",
            False,
            f"`{branch}` has no branch protection and no ruleset: anyone with push access merges around the "
            f"approvals check; in {_SETTINGS} add a rule for `{branch}` (the checks below say what it needs)",
        )
    checks = (
        (
            CONTEXT in rules.checks,
            "requires regops/approvals",
            f"turn on “Require status checks to pass” with `{CONTEXT}`",
        ),
        (rules.approvals >= 1, "requires reviews", "turn on “Require a pull request before merging” with 1+ approvals"),
        (
            not rules.force_pushes,
            "blocks force pushes",
            "turn off “Allow force pushes” (ruleset: “Block force pushes”)",
        ),
        (not rules.deletions, "blocks deletion", "turn off “Allow deletions” (ruleset: “Restrict deletions”)"),
        (
            not rules.admins_bypass,
            "no bypass",
            "turn on “Do not allow bypassing the above settings” (enforce_admins; ruleset: empty bypass list)",
        ),
    )
    for ok, check, fix in checks:
        yield Finding(f"{branch}: {check}", ok, "set" if ok else f"{where}: {fix}")


def environment_findings(
    environment: Environment | None, *, default_branch: str, secrets: frozenset[str], variables: frozenset[str]
) -> Iterator[Finding]:
    """The ``registry-bot`` environment: deployable from the default branch only, holding ``secrets`` and
    ``variables`` (names)."""
    where = f"Settings → Environments → {ENVIRONMENT}"
    if environment is None:
        yield Finding(
            f"environment {ENVIRONMENT}",
            False,
            f"no environment `{ENVIRONMENT}`: create it in Settings → Environments, deployable from `{default_branch}` "
            "only, with the secrets below",
        )
        environment = Environment(ENVIRONMENT, None, False, frozenset(), frozenset())
    else:
        only_default = environment.branches == (default_branch,)
        yield Finding(
            f"environment {ENVIRONMENT}: {default_branch} only",
            only_default,
            f"deployable from {default_branch} only"
            if only_default
            else f"{where}: “Deployment branches and tags” → “Selected branches and tags”, only `{default_branch}` "
            f"(now: {_admits(environment)})",
        )
    for kind, names, present in (
        ("secret", secrets, environment.secrets),
        ("variable", variables, environment.variables),
    ):
        for name in sorted(names):
            ok = name in present
            yield Finding(
                f"{kind} {name}",
                ok,
                "present" if ok else f"{where}: add the environment {kind} `{name}` (the workflows read it)",
            )


def _admits(environment: Environment) -> str:
    if environment.branches is not None:
        return "branches " + ", ".join(f"`{name}`" for name in environment.branches) if environment.branches else "none"
    return "every protected branch" if environment.protected_branches else "every branch"


def app_findings(installations: list[Installation], *, bots: list[str], needs: Mapping[str, str]) -> Iterator[Finding]:
    """The App whose bot regops.yaml lists is installed, with at least the permissions the workflows ask for."""
    app = next((item for item in installations if item.login in bots), None)
    if app is None:
        found = ", ".join(item.login for item in installations) or "none"
        yield Finding(
            "GitHub App installed",
            False,
            f"no installed GitHub App is one of regops.yaml's bots ({', '.join(bots)}; installed: {found}): install "
            "the registry's App on the organization and list its login `<app-slug>[bot]` under `bots:`",
        )
        return
    missing = [
        f"{name.replace('_', ' ').capitalize()}: {'Read and write' if level == 'write' else 'Read-only'}"
        for name, level in sorted(needs.items())
        if _LEVELS.get(app.permissions.get(name, ""), 0) < _LEVELS[level]
    ]
    yield Finding(
        f"GitHub App {app.login}: permissions",
        not missing,
        "has what the workflows ask for"
        if not missing
        else f"the App's settings → Permissions: grant {', '.join(missing)}, then accept them on the installation",
    )
