"""``regops doctor``: the GitHub settings of a registry repository read through the API, and its pinned files read
from the checkout, judged by the rules in :mod:`regops.doctor`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from regops import doctor, scaffold
from regops._version import __version__
from regops.adapters.github import GitHub
from regops.codeowners import codeowners, codeowners_file
from regops.doctor import ENVIRONMENT, OPTIONAL_SECRETS, Finding
from regops.flows.pulls import protected_branches
from regops.workspace import open_registry

if TYPE_CHECKING:
    from regops.registry import Registry
    from regops.workspace import RegistryArg

__all__ = ["doctor_checks"]


def doctor_checks(
    *, registry: RegistryArg = "registry", repo: str | None = None, github: GitHub | None = None
) -> list[Finding]:
    """Every setting the approvals gate relies on, each a :class:`Finding` (``ok`` or the setting to change)."""

    opened = open_registry(registry)
    gh = github or GitHub(repo)
    pinned = {name: text for name, text in scaffold.pinned_files().items() if name.startswith(".github/")}
    needs = doctor.workflow_needs(pinned)
    branches = protected_branches(opened, gh)
    findings = [found for branch in branches for found in doctor.branch_findings(branch, gh.branch_rules(branch))]
    findings += doctor.environment_findings(
        gh.environment(ENVIRONMENT),
        default_branch=gh.default_branch(),
        secrets=_required_secrets(opened, needs.secrets),
        variables=needs.variables,
    )
    findings += doctor.app_findings(gh.installations(), bots=opened.config.bots, needs=needs.app_permissions)
    findings += _pinned_findings(opened, pinned)
    return findings


def _required_secrets(opened: Registry, named: frozenset[str]) -> frozenset[str]:
    """The secrets the workflows read, but the metrics token unless regops.yaml's canary reads one, and the signing
    key unless regops.yaml's `signing:` trusts keys."""
    metrics = (opened.config.raw.get("canary") or {}).get("metrics") or {}
    wanted = {metrics.get("token_env")}
    if (opened.config.signing or {}).get("keys"):
        wanted.add("REGOPS_SIGNING_KEY")
    return frozenset(name for name in named if name not in OPTIONAL_SECRETS or name in wanted)


def _pinned_findings(opened: Registry, pinned: dict[str, str]) -> Iterator[Finding]:
    """The workflows and their lock as this regops version pins them, and CODEOWNERS current, in the checkout."""
    root = opened.root.parent
    for name, text in pinned.items():
        path = root / name
        current = path.read_text(encoding="utf-8") if path.is_file() else None
        state = "missing" if current is None else "stale" if current != text else "pinned"
        yield Finding(
            name,
            state == "pinned",
            f"as regops {__version__} pins it"
            if state == "pinned"
            else f"{state}: not what regops {__version__} writes; run `regops init --upgrade` and commit it",
        )
    path, _ = codeowners_file(opened)
    stale = [problem.message for problem in codeowners(opened, datetime.now(UTC))] if path.is_file() else ["missing"]
    yield Finding(
        "CODEOWNERS",
        not stale,
        "current" if not stale else f"{stale[0].split(':')[0]}: run `regops codeowners` and commit .github/CODEOWNERS",
    )
