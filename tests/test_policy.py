"""The pure rules of policy.py (and the token rule of tokens.py), one by one: the stage machine, what a bot
may do on its own, which promotion needs a passed canary, which variable may carry the metrics token."""

from __future__ import annotations

from itertools import product
from typing import Any

import pytest

from regops.kinds import STAGES, Stage
from regops.policy import bot_may_enter, needs_passed_canary, step_allowed
from regops.records import ConfigRecord
from regops.tokens import refused_token_env, token_env_problem

# The legal steps, spelled out (DESIGN's stage machine): forward one stage at a time, anything to archived,
# and archived -> prod only for a version that was in prod before (a rollback).
LEGAL: set[tuple[Stage, Stage]] = {
    ("candidate", "dev"),
    ("dev", "staging"),
    ("staging", "prod"),
    ("candidate", "archived"),
    ("dev", "archived"),
    ("staging", "archived"),
    ("prod", "archived"),
}


@pytest.mark.parametrize(("source", "target"), list(product(STAGES, STAGES)))
def test_step_allowed_is_the_stage_machine(source: Stage, target: Stage) -> None:
    assert step_allowed(source, target, was_prod=False) == ((source, target) in LEGAL)
    assert step_allowed(source, target, was_prod=True) == ((source, target) in LEGAL | {("archived", "prod")})


def config(**stages: dict[str, Any]) -> ConfigRecord:
    """regops.yaml as the loader fills it in, with the given stages' rules (others absent)."""
    rule = {"from": [], "approvals": 0, "approvers": [], "bots": False, "require_canary": False}
    return ConfigRecord({"stages": {s: {**rule, **r} for s, r in stages.items()}, "bots": ["ci-bot"]})


@pytest.mark.parametrize(
    ("target", "bots", "expected"),
    [
        ("dev", True, True),
        ("archived", True, True),
        ("dev", False, False),
        ("archived", False, False),
        # Never staging or prod, whatever regops.yaml says.
        ("staging", True, False),
        ("prod", True, False),
        ("candidate", True, False),
    ],
)
def test_bot_may_enter_dev_and_archived_only_where_allowed(target: Stage, bots: bool, expected: bool) -> None:
    assert bot_may_enter(config(**{target: {"bots": bots}}), target) is expected


def test_bot_may_enter_no_stage_regops_yaml_does_not_name() -> None:
    assert bot_may_enter(config(staging={"bots": True}), "dev") is False


@pytest.mark.parametrize(
    ("source", "target", "require", "expected"),
    [
        ("staging", "prod", True, True),
        ("staging", "prod", False, False),
        # A rollback brings back a version that served prod before: no canary.
        ("archived", "prod", True, False),
        ("dev", "staging", True, False),
    ],
)
def test_needs_passed_canary_only_from_staging_to_prod_where_required(
    source: Stage, target: Stage, require: bool, expected: bool
) -> None:
    rules = config(**{target: {"require_canary": require}})
    assert needs_passed_canary(rules, source, target) is expected


def test_needs_passed_canary_not_when_regops_yaml_has_no_rule_for_prod() -> None:
    assert needs_passed_canary(config(staging={"require_canary": True}), "staging", "prod") is False


@pytest.mark.parametrize("name", ["GITHUB_TOKEN", "GH_TOKEN", "HF_TOKEN", "hugging_face_hub_token", "ACTIONS_ID"])
def test_no_allow_list_admits_a_github_or_hub_credential(name: str) -> None:
    assert refused_token_env(name)
    problem = token_env_problem(name, allowed=[name])
    assert problem is not None
    assert problem.startswith(f"{name} holds a GitHub or Hub credential, which regops never sends")


def test_a_token_variable_must_be_listed() -> None:
    assert not refused_token_env("PROMETHEUS_TOKEN")
    assert token_env_problem("PROMETHEUS_TOKEN", allowed=["PROMETHEUS_TOKEN"]) is None
    assert token_env_problem("PROMETHEUS_TOKEN", allowed=["OTHER"]) == (
        "PROMETHEUS_TOKEN is not in canary.allowed_token_envs of regops.yaml (listed: OTHER): "
        "add it there, or name a variable that is"
    )
    assert "(listed: none)" in (token_env_problem("PROMETHEUS_TOKEN", allowed=[]) or "")
