"""A model's canary guardrails as configured: parsing each into a :class:`Rule`, merging a model's ``canary``
over the registry's (:func:`settings`), and showing a metric's value in its unit (:func:`show`).

Pure: config dicts in, rules out; a guardrail that cannot be checked raises :class:`CanaryConfigError`.
The statistics are :mod:`regops.confidence`, the verdict :mod:`regops.canary`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Literal, TypeVar

from regops.errors import RegopsError

Kind = Literal["rate", "latency", "gauge"]

_KINDS: dict[str, Kind] = {"rate": "rate", "latency": "latency", "gauge": "gauge"}
_DEFAULT_QUANTILE: dict[Kind, float | None] = {"rate": None, "latency": 0.99, "gauge": 0.5}
# A bare number is in the metric's own unit: a fraction for rates, seconds for latencies.
# Divisors, not factors: 700 / 1000 is 0.7 exactly, 700 * 0.001 is not.
_UNIT_DIVISOR: dict[Kind, dict[str, float]] = {
    "rate": {"": 1.0, "%": 100.0},
    "latency": {"": 1.0, "s": 1.0, "ms": 1000.0},
    "gauge": {"": 1.0},
}
_UNIT_HINT: dict[Kind, str] = {
    "rate": "a rate is a fraction: write 1.5% or 0.015",
    "latency": "a latency is in seconds: write 250ms, 0.25s or 0.25",
    "gauge": "a gauge takes a plain number in the metric's own unit, e.g. 0.8",
}
_AMOUNT = re.compile(r"^(-?\d+(?:\.\d+)?)(ms|s|%)?$")
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)%$")
_T = TypeVar("_T")


class CanaryConfigError(RegopsError):
    """A guardrail that cannot be checked as configured (``.metric`` names it)."""

    def __init__(self, metric: str, problem: str) -> None:
        self.metric = metric
        self.problem = problem
        super().__init__(f"canary guardrail {metric!r}: {problem} (fix it under `canary: guardrails:` in the config)")


@dataclass(frozen=True)
class Rule:
    """A parsed guardrail: relative allowances as fractions, absolute bounds in the metric's unit.

    ``max_increase``/``max`` hold the canary down (higher is worse), ``max_decrease``/``min``
    hold it up (higher is better). Build it with :meth:`from_config`.
    """

    metric: str
    kind: Kind
    quantile: float | None
    max_increase: float | None
    max_decrease: float | None
    max: float | None
    min: float | None
    confidence: float
    baseline: float | None = None  # what `canary plan` sizes for (see files.Guardrail.baseline)

    def __post_init__(self) -> None:
        problem = _rule_problem(self)
        if problem:
            raise CanaryConfigError(self.metric, problem)

    @classmethod
    def from_config(cls, raw: Mapping[str, Any], *, confidence: float) -> Rule:
        """Parse one validated ``Guardrail`` dict; ``confidence`` applies unless it sets its own.

        :raises CanaryConfigError: a unit that does not fit the kind, a quantile on a rate,
            no rule at all, or bounds that no canary could meet.
        """
        metric = str(raw.get("metric", "?"))
        kind = _KINDS.get(str(raw.get("kind")))
        if kind is None:
            raise CanaryConfigError(metric, f"kind {raw.get('kind')!r} is not one of rate, latency, gauge")
        if kind == "rate" and raw.get("quantile") is not None:
            raise CanaryConfigError(metric, "a rate has no quantile: remove `quantile`, or use kind latency or gauge")
        return cls(
            metric=metric,
            kind=kind,
            quantile=_DEFAULT_QUANTILE[kind] if raw.get("quantile") is None else float(raw["quantile"]),
            max_increase=_relative(raw, "max_increase", metric=metric),
            max_decrease=_relative(raw, "max_decrease", metric=metric),
            max=_amount(raw, "max", metric=metric, kind=kind),
            min=_amount(raw, "min", metric=metric, kind=kind),
            confidence=confidence if raw.get("confidence") is None else float(raw["confidence"]),
            baseline=_relative(raw, "baseline", metric=metric),
        )

    @property
    def alpha(self) -> float:
        """The false-fail rate each test allows: ``1 - confidence``."""
        return 1 - self.confidence

    @property
    def relative(self) -> bool:
        """Whether the rule compares with prod (else prod's numbers are only reported)."""
        return self.max_increase is not None or self.max_decrease is not None


def _rule_problem(rule: Rule) -> str | None:
    if all(v is None for v in (rule.max_increase, rule.max_decrease, rule.max, rule.min)):
        return "no rule: set at least one of max_increase, max_decrease, max, min"
    if not 0 < rule.confidence < 1:
        return f"confidence {rule.confidence} must be between 0 and 1 (e.g. 0.95)"
    fits = rule.quantile is None if rule.kind == "rate" else rule.quantile is not None and 0 < rule.quantile < 1
    if not fits:
        return f"quantile {rule.quantile} does not fit a {rule.kind}: a rate has none, others need 0 < q < 1"
    if rule.max_decrease is not None and rule.max_decrease >= 1:
        return f"max_decrease {rule.max_decrease:.0%} allows any value: use less than 100%"
    return _bounds_problem(rule)


def _bounds_problem(rule: Rule) -> str | None:
    if rule.max is not None and rule.min is not None and rule.min > rule.max:
        return f"min {rule.min:g} is above max {rule.max:g}: no canary could pass"
    for name, bound in (("max", rule.max), ("min", rule.min)):
        if bound is not None and rule.kind == "rate" and not 0 <= bound <= 1:
            return f"{name} {bound:g} is not a rate between 0 and 1: write 1.5% or 0.015"
        if bound is not None and rule.kind == "latency" and bound < 0:
            return f"{name} {bound:g} is a negative latency"
    return None


def _relative(raw: Mapping[str, Any], field: str, *, metric: str) -> float | None:
    value = raw.get(field)
    if value is None:
        return None
    match = _RELATIVE.match(value) if isinstance(value, str) else None
    if not match:
        raise CanaryConfigError(
            metric, f"{field} {value!r} is not a relative allowance: write a percentage such as 10%"
        )
    return float(match[1]) / 100


def _amount(raw: Mapping[str, Any], field: str, *, metric: str, kind: Kind) -> float | None:
    value = raw.get(field)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number, unit = float(value), ""
    elif isinstance(value, str) and (match := _AMOUNT.match(value.strip())):
        number, unit = float(match[1]), match[2] or ""
    else:
        raise CanaryConfigError(
            metric, f"{field} {value!r} is not a number or a number with a unit ({_UNIT_HINT[kind]})"
        )
    divisor = _UNIT_DIVISOR[kind].get(unit)
    if divisor is None:
        raise CanaryConfigError(metric, f"{field} {value!r}: '{unit}' does not fit a {kind} ({_UNIT_HINT[kind]})")
    return number / divisor


def show(kind: str, value: float | None) -> str:
    """A metric's value in its unit: rates in percent, latencies in ms (or s), anything else as is."""
    if value is None:
        return "n/a"
    if kind == "rate":
        percent = value * 100
        return f"{percent:.2f}%" if percent >= 0.1 or percent == 0 else f"{percent:.2g}%"
    if kind == "latency" and math.isfinite(value):
        return f"{value * 1000:.3g}ms" if abs(value) < 1 else f"{value:.3g}s"
    return f"{value:.4g}"


def show_fraction(value: float) -> str:
    return f"{value * 100:.4g}%"


@dataclass(frozen=True)
class Settings:
    """One model's canary settings: regops.yaml's ``canary`` with the model's overrides applied.

    ``guardrails`` are the configured dicts (what a metrics source reads its queries
    from), ``rules`` the same guardrails parsed, in the same order. ``metrics`` and
    ``allowed_token_envs`` are regops.yaml's alone.
    """

    min_requests: int
    min_duration: timedelta
    confidence: float
    metrics: Mapping[str, Any] | None
    allowed_token_envs: tuple[str, ...]
    guardrails: tuple[Mapping[str, Any], ...]
    rules: tuple[Rule, ...]
    max_requests: int | None = None
    max_duration: timedelta | None = None
    traffic_percent: float = 5.0
    traffic_per_hour: float | None = None


# Where the canary connects and with which credential: regops.yaml's (the admins') to say, never a model's.
REGISTRY_ONLY: Final = frozenset({"metrics", "allowed_token_envs"})


def settings(defaults: Mapping[str, Any], override: Mapping[str, Any] | None) -> Settings:
    """Merge a model's ``canary`` (model.yaml) over the registry's (regops.yaml, defaults filled in).

    Every key the model sets wins, except the metrics source and its token
    (:data:`REGISTRY_ONLY`), which only regops.yaml sets; a model's ``guardrails``
    list replaces the registry's whole list.

    :raises CanaryConfigError: a guardrail that cannot be checked as configured.
    """
    own = {k: v for k, v in (override or {}).items() if v is not None and k not in REGISTRY_ONLY}
    merged = {**defaults, **own}
    confidence = float(merged["confidence"])
    guardrails = tuple(merged.get("guardrails") or ())
    return Settings(
        min_requests=int(merged["min_requests"]),
        min_duration=timedelta(minutes=merged["min_duration_minutes"]),
        confidence=confidence,
        metrics=defaults.get("metrics"),
        allowed_token_envs=tuple(defaults.get("allowed_token_envs") or ()),
        guardrails=guardrails,
        rules=tuple(Rule.from_config(raw, confidence=confidence) for raw in guardrails),
        max_requests=_optional(merged, "max_requests", int),
        max_duration=_optional(merged, "max_duration_minutes", lambda m: timedelta(minutes=m)),
        traffic_percent=float(merged.get("traffic_percent", 5.0)),
        traffic_per_hour=_optional(merged, "traffic_per_hour", float),
    )


def _optional(merged: Mapping[str, Any], key: str, convert: Callable[[Any], _T]) -> _T | None:
    return None if merged.get(key) is None else convert(merged[key])
