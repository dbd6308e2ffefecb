"""Which environment variable may carry the metrics provider's bearer token: the one rule ``validate``
and the metrics adapter both apply. A GitHub or Hub credential never leaves for a metrics server.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from datetime import datetime
from typing import Final

from regops.kinds import Problem
from regops.registry import CONFIG_FILE, Registry

__all__ = ["canary_token", "refused_token_env", "token_env_problem"]


# The credentials regops' workflows hold for GitHub and the Hub (and the runner's own): never a metrics token.
_CREDENTIAL_ENVS: Final = re.compile(r"^(?:GITHUB_|GH_|ACTIONS_|HF_|HUGGING_FACE_)", re.IGNORECASE)


def refused_token_env(name: str) -> bool:
    """Whether ``name`` is a GitHub or Hub credential's variable, which no allow-list can admit."""
    return _CREDENTIAL_ENVS.match(name) is not None


def token_env_problem(name: str, allowed: Collection[str]) -> str | None:
    """Why the metrics provider may not send the variable ``name`` as its bearer token; None when it may.

    The one rule ``validate`` and the metrics adapter both apply: ``name`` is on
    regops.yaml's ``canary.allowed_token_envs`` and is no GitHub or Hub credential.
    """
    if refused_token_env(name):
        return (
            f"{name} holds a GitHub or Hub credential, which regops never sends to a metrics server: give the "
            "metrics server a token of its own (e.g. PROMETHEUS_TOKEN), list it in canary.allowed_token_envs "
            "of regops.yaml and name it here"
        )
    if name not in allowed:
        listed = ", ".join(allowed) or "none"
        return (
            f"{name} is not in canary.allowed_token_envs of regops.yaml (listed: {listed}): "
            "add it there, or name a variable that is"
        )
    return None


def canary_token(registry: Registry, _: datetime) -> Iterator[Problem]:
    """The metrics token comes from a variable regops.yaml allows, and no allow-list admits a GitHub or Hub one."""
    shown = registry.display(registry.root / CONFIG_FILE)
    config = registry.config.raw["canary"]
    allowed = config.get("allowed_token_envs") or []
    for i, name in enumerate(allowed):
        if refused_token_env(name):
            yield Problem(
                shown,
                field=f"canary.allowed_token_envs[{i}]",
                message=f"{name} holds a GitHub or Hub credential, which regops never sends to a metrics server: "
                "remove it, and give the metrics server a token of its own",
            )
    token_env = (config.get("metrics") or {}).get("token_env")
    if token_env and (problem := token_env_problem(token_env, allowed)):
        yield Problem(shown, field="canary.metrics.token_env", message=problem)
