"""The canary decision: does the staging version hold its guardrails against prod?

Pure: observations in, a verdict with its numbers out. Reading the metrics is
``adapters/metrics.py``; writing the result and opening pull requests is ``flows/canary.py``.

A guardrail (:class:`Rule`) is checked on one metric (:func:`check`), and the
metrics' results make one :class:`Decision` (:func:`decide`). Each guardrail has three
outcomes, each on evidence at the configured ``confidence`` (alpha = 1 - confidence):
``fail`` when the canary is shown worse than the allowance, ``pass`` only when it is shown
within it (non-inferiority), else ``pending`` — and ``inconclusive`` once ``max_requests``
or ``max_duration`` pass without a decision.

The bounds are anytime-valid confidence sequences (:func:`boundary`: the one-sided
normal-mixture boundary of Howard et al. 2021, with the observed variance as in
Waudby-Smith et al. 2024), so a job that checks every 15 minutes keeps P(false fail)
and P(false pass) each ≤ alpha over the whole canary, not per look.

Rates (:class:`Counts`): a confidence sequence for ``p_c - f·p_p`` (``max_increase = a``:
f = 1+a; ``max_decrease``: f = 1-a) or ``p_c - m`` (``max``/``min``), with each arm's
Bernoulli variance (half a pseudo-count: no errors is not certainty) at t = min(n_c, n_p).
Recorded as bounds of the canary's excess over prod (relative) or of its rate (absolute).

Quantiles (:class:`Distribution`: Prometheus histogram buckets or raw samples): the
quantile confidence sequences of Howard & Ramdas 2022 (:func:`quantile_bounds`): the
boundary on the count of values below the quantile bounds its rank at every n, and a rank
becomes a value by linear interpolation within its bucket, as ``histogram_quantile`` does.
Relative rules compare the canary's bounds with prod's, each at alpha/2 (Bonferroni).

A rule with several parts fails if any part fails and passes only if all pass. A metric
with fewer than ``min_requests`` values on an arm it needs is ``pending``. :func:`plan`
says how many requests a decision needs (``regops canary plan``).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from itertools import accumulate
from statistics import NormalDist
from typing import Any, Final, Literal, TypeVar

from regops.errors import RegopsError

__all__ = [
    "FINAL",
    "METHOD",
    "RECORDED",
    "CanaryConfigError",
    "Checked",
    "Counts",
    "Decision",
    "Distribution",
    "MetricResult",
    "Observation",
    "Rule",
    "SamplePlan",
    "Settings",
    "Verdict",
    "boundary",
    "check",
    "decide",
    "needed",
    "plan",
    "plans",
    "quantile_bounds",
    "recorded",
    "settings",
    "show",
    "unavailable",
]

Verdict = Literal["pass", "fail", "pending", "inconclusive"]
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
_PRECEDENCE: tuple[Verdict, ...] = ("fail", "inconclusive", "pending", "pass")
_NORMAL = NormalDist()
_T = TypeVar("_T")


class CanaryConfigError(RegopsError):
    """A guardrail that cannot be checked as configured (``.metric`` names it)."""

    def __init__(self, metric: str, problem: str) -> None:
        self.metric = metric
        self.problem = problem
        super().__init__(f"canary guardrail {metric!r}: {problem} (fix it under `canary: guardrails:` in the config)")


@dataclass(frozen=True)
class Counts:
    """A rate's observation for one version: ``errors`` out of ``requests``."""

    errors: int
    requests: int

    @property
    def rate(self) -> float:
        """``errors / requests``; 0 when there were no requests."""
        return self.errors / self.requests if self.requests > 0 else 0.0


@dataclass(frozen=True)
class Distribution:
    """Per-request values of one version (latencies in seconds, scores), as cumulative bucket counts.

    ``bounds`` ascend and end with ``inf``; ``cumulative[i]`` is how many values were
    ``<= bounds[i]`` (Prometheus' ``le`` buckets). Raw samples become one bucket per
    distinct value (:meth:`from_samples`).
    """

    bounds: tuple[float, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def from_samples(cls, samples: list[float]) -> Distribution:
        values = sorted(samples)
        bounds: list[float] = []
        cumulative: list[float] = []
        for i, value in enumerate(values):
            if bounds and bounds[-1] == value:
                cumulative[-1] = i + 1
            else:
                bounds.append(value)
                cumulative.append(i + 1)
        bounds.append(float("inf"))
        cumulative.append(len(values))
        return cls(tuple(bounds), tuple(cumulative))

    @property
    def total(self) -> int:
        return int(self.cumulative[-1]) if self.cumulative else 0

    def value_at_rank(self, rank: float) -> float:
        """The value at ``rank`` (0 to :attr:`total`), interpolated as Prometheus' ``histogram_quantile``.

        Within a bucket values are taken as spread evenly from the bucket below's bound
        (0 below the first bucket, unless its bound is ≤ 0: then the bound itself); a rank
        in the ``+Inf`` bucket is the highest finite bound. Counts that dip (scrapes of a
        histogram taken at slightly different times) are evened out as Prometheus does.
        """
        cumulative = self._evened
        last = len(cumulative) - 1
        rank = min(max(rank, 0.0), cumulative[-1])
        # At rank 0, skip empty leading buckets: the smallest value is in the first bucket holding any.
        b = bisect_right(cumulative, 0.0, hi=last) if rank == 0 else bisect_left(cumulative, rank, hi=last)
        if b == last:
            return self.bounds[last - 1]
        if b == 0 and self.bounds[0] <= 0:
            return self.bounds[0]
        start, below = (self.bounds[b - 1], cumulative[b - 1]) if b > 0 else (0.0, 0.0)
        return start + (self.bounds[b] - start) * (rank - below) / (cumulative[b] - below)

    @cached_property
    def _evened(self) -> list[float]:
        """The counts with dips evened out (each at least the one below), computed once per observation."""
        return list(accumulate(self.cumulative, max))

    def quantile(self, q: float) -> float:
        """The ``q``-quantile's point estimate, as ``histogram_quantile(q, …)`` computes it."""
        return self.value_at_rank(q * self.cumulative[-1])

    def quantile_bound(self, q: float, *, alpha: float, upper: bool) -> float:
        """A one-sided ``1 - alpha`` confidence bound of the ``q``-quantile (see the module docstring)."""
        n = self.cumulative[-1]
        half = _NORMAL.inv_cdf(1 - alpha) * math.sqrt(n * q * (1 - q))
        return self.value_at_rank(n * q + half if upper else n * q - half)


Observation = Counts | Distribution


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


@dataclass(frozen=True)
class MetricResult:
    """One guardrail's verdict with the numbers behind it.

    ``canary``/``prod`` are point estimates (a rate, or the quantile), ``limit`` the
    threshold the canary is held to at prod's estimate, ``p_value`` the rate test's
    (None for quantiles, decided by confidence bounds), ``reason`` one readable line.
    """

    metric: str
    kind: str
    verdict: Verdict
    canary: float | None
    prod: float | None
    limit: float | None
    n_canary: int
    n_prod: int
    p_value: float | None
    reason: str
    lower: float | None = None
    upper: float | None = None
    method: str | None = None
    looks: int = 1

    def as_record(self) -> dict[str, Any]:
        """A compact, YAML- and JSON-safe dict for the version file: unset numbers left out, 4 significant digits."""
        record: dict[str, Any] = {"metric": self.metric, "kind": self.kind, "verdict": self.verdict}
        numbers = {
            "canary": self.canary,
            "prod": self.prod,
            "limit": self.limit,
            "p_value": self.p_value,
            "lower": self.lower,
            "upper": self.upper,
        }
        record.update({k: _round(v) for k, v in numbers.items() if v is not None and math.isfinite(v)})
        record.update({"n_canary": int(self.n_canary), "n_prod": int(self.n_prod), "reason": self.reason})
        if self.method:
            record.update({"method": self.method, "looks": int(self.looks)})
        return record

    @classmethod
    def from_record(cls, raw: Mapping[str, Any]) -> MetricResult:
        """The inverse of :meth:`as_record` (with its rounded numbers): a verdict recorded in a version file."""
        verdict = raw.get("verdict")
        return cls(
            metric=str(raw.get("metric", "?")),
            kind=str(raw.get("kind", "?")),
            verdict=verdict if verdict in _PRECEDENCE else "inconclusive",
            canary=raw.get("canary"),
            prod=raw.get("prod"),
            limit=raw.get("limit"),
            n_canary=int(raw.get("n_canary", 0)),
            n_prod=int(raw.get("n_prod", 0)),
            p_value=raw.get("p_value"),
            reason=str(raw.get("reason", "")),
            lower=raw.get("lower"),
            upper=raw.get("upper"),
            method=raw.get("method"),
            looks=int(raw.get("looks", 1)),
        )

    def headline(self) -> str:
        """The numbers in a few words: ``error_rate 0.91% vs 0.30% (limit 0.33%), p=0.0001``.

        A result decided by bounds says what they showed: ``error_rate within +10% of prod: upper bound +6.1%``.
        """
        if self.method:
            return self.reason.split(" (", 1)[0]
        text = f"{self.metric} {show(self.kind, self.canary)} vs {show(self.kind, self.prod)}"
        if self.limit is not None:
            text += f" (limit {show(self.kind, self.limit)})"
        return text + (f", {_show_p(self.p_value)}" if self.p_value is not None else "")


@dataclass(frozen=True)
class Decision:
    """The canary's overall verdict, its metrics' results, and one line saying why."""

    verdict: Verdict
    metrics: tuple[MetricResult, ...]
    summary: str


def check(
    rule: Rule, canary: Observation, prod: Observation, *, min_requests: int, max_requests: int | None = None
) -> MetricResult:
    """Check one guardrail: ``pending`` below ``min_requests`` values, else ``pass``/``fail`` when the bounds show it.

    Undecided with ``max_requests`` values on each arm it needs is ``inconclusive``.

    Counts that cannot be right (more errors than requests, a histogram without a
    ``+Inf`` bucket) make the metric ``inconclusive``, never a pass.

    :raises CanaryConfigError: the observations are not of the rule's kind (``Counts`` for rates).
    """
    if rule.kind == "rate":
        if not isinstance(canary, Counts) or not isinstance(prod, Counts):
            raise CanaryConfigError(rule.metric, "a rate guardrail needs error and request counts, got buckets")
        return _capped(_check_rate(rule, canary, prod, min_requests=min_requests), rule, max_requests)
    if not isinstance(canary, Distribution) or not isinstance(prod, Distribution):
        raise CanaryConfigError(rule.metric, f"a {rule.kind} guardrail needs buckets or samples, got counts")
    return _capped(_check_quantile(rule, canary, prod, min_requests=min_requests), rule, max_requests)


def _capped(result: MetricResult, rule: Rule, max_requests: int | None) -> MetricResult:
    """An undecided result becomes ``inconclusive`` once its arms reached ``max_requests``."""
    n = min(result.n_canary, result.n_prod) if rule.relative else result.n_canary
    if result.verdict != "pending" or result.method is None or max_requests is None or n < max_requests:
        return result
    reason = f"no decision within max_requests {max_requests}: {result.reason}"
    return replace(result, verdict="inconclusive", reason=reason)


def unavailable(rule: Rule, why: str) -> MetricResult:
    """The result of a guardrail whose metrics could not be read: ``inconclusive``, with ``why``."""
    reason = f"{rule.metric}: metrics unavailable: {why}"
    return MetricResult(rule.metric, rule.kind, "inconclusive", None, None, None, 0, 0, None, reason)


def decide(
    results: Sequence[MetricResult],
    *,
    started_at: datetime,
    now: datetime,
    min_duration: timedelta,
    max_duration: timedelta | None = None,
) -> Decision:
    """The canary's verdict: ``pending`` before ``min_duration``, then the worst of its metrics.

    Worst first: fail, inconclusive, pending, pass. No guardrails at all is
    ``inconclusive`` at once (a canary nobody measures is never a pass); still
    pending after ``max_duration`` is ``inconclusive``, with what each guardrail still needs.
    """
    metrics = tuple(results)
    if not metrics:
        return Decision("inconclusive", metrics, "inconclusive: no guardrails configured")
    verdict = next(v for v in _PRECEDENCE if any(r.verdict == v for r in metrics))
    elapsed = now - started_at
    if elapsed < min_duration:
        left, total = _span(min_duration - elapsed), _span(min_duration)
        return Decision("pending", metrics, f"pending: {left} left of the {total} minimum duration (so far: {verdict})")
    if verdict == "pending" and max_duration is not None and elapsed >= max_duration:
        why = f"no decision within the {_span(max_duration)} maximum duration: {_why(verdict, metrics)}"
        return Decision("inconclusive", metrics, f"inconclusive: {why}")
    return Decision(verdict, metrics, f"{verdict}: {_why(verdict, metrics)}")


def _why(verdict: Verdict, metrics: tuple[MetricResult, ...]) -> str:
    deciding = [r for r in metrics if r.verdict == verdict]
    if verdict == "fail":
        return "; ".join(r.headline() for r in deciding)
    if verdict == "pass":
        hold = "the guardrail holds" if len(metrics) == 1 else f"all {len(metrics)} guardrails hold"
        return f"{hold}: " + "; ".join(r.headline() for r in metrics)
    return "; ".join(r.reason for r in deciding)


def _span(delta: timedelta) -> str:
    hours, rest = divmod(math.ceil(delta.total_seconds()), 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return "".join(parts) or "0s"


# --- anytime-valid bounds ----------------------------------------------------

# The method every bound uses, recorded beside the bounds in the version file.
METHOD: Final = "normal-mixture confidence sequence (Howard et al. 2021), one-sided, CLT variance"
# The sample (per arm) the boundary is tightest at: decisions on rates of a few per mille take 10^4 to 10^6 requests.
T_OPT: Final = 100_000


@lru_cache(maxsize=8192)
def boundary(t: float, alpha: float, t_opt: float = T_OPT) -> float:
    """u(t): a sum ``S_t`` of ``t`` standardized values stays below u(t) at every ``t`` with probability ≥ 1 - alpha.

    The one-sided normal mixture (Howard et al. 2021, §3.2): mixing ``exp(λS - λ²t/2)``
    over a half-normal λ of precision rho gives the martingale
    ``2·sqrt(rho/(t+rho))·exp(S²/(2(t+rho)))·Φ(S/sqrt(t+rho))``; Ville's inequality bounds its
    crossing of 1/alpha, whose root in S is found by bisection. rho makes the bound
    tightest at ``t_opt`` (their eq. (3.11)).
    """
    rho = t_opt / (2 * math.log(1 / alpha) + math.log(1 + 2 * math.log(1 / alpha)))
    v = t + rho
    target = math.log(1 / alpha) - math.log(2) - 0.5 * math.log(rho / v)
    low, high = 0.0, math.sqrt(2 * v * (target + math.log(2)))
    for _ in range(80):
        s = (low + high) / 2
        if s * s / (2 * v) + math.log(_NORMAL.cdf(s / math.sqrt(v))) < target:
            low = s
        else:
            high = s
    return high


def needed(sd: float, gap: float, *, alpha: float, power: float = 0.5) -> int:
    """The sample per arm at which a mean's bound fits within ``gap`` of its true value with probability ``power``.

    The bound is ``sd·u(n)/n`` (:func:`boundary`) from an estimate that itself strays up
    to ``z_power·sd/sqrt(n)`` (power 0.5: no margin, the sample at the current estimates).
    """
    if gap <= 0 or sd <= 0:
        return 0 if sd <= 0 < gap else _NEVER
    z = _NORMAL.inv_cdf(power)

    def short(k: int) -> bool:
        n = _grid(k)
        return sd * (boundary(n, alpha) + z * math.sqrt(n)) / n > gap

    # Samples on a grid 2 % apart (2^(k/32)): the boundary's cache serves every later call.
    low, high = 0, 32
    while short(high):
        if _grid(high) >= _NEVER:
            return _NEVER
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if short(mid) else (low, mid)
    return _grid(high)


def _grid(k: int) -> int:
    return math.ceil(2 ** (k / 32))


@dataclass(frozen=True)
class SamplePlan:
    """What one guardrail needs to decide: requests per arm for a canary equal to prod (to pass, in
    ``power`` of canaries) and for one at twice the allowance (to fail), and the hours each takes."""

    metric: str
    part: str
    pass_equal: int
    fail_twice: int
    hours_equal: float | None
    hours_twice: float | None


def plans(config: Settings, *, traffic_per_hour: float | None = None) -> list[SamplePlan | str]:
    """Each guardrail's :func:`plan` at its ``baseline`` and the canary's share of ``traffic_per_hour``.

    A guardrail without a ``baseline`` cannot be sized: its entry says what to set.
    """
    per_hour = traffic_per_hour or config.traffic_per_hour
    canary_per_hour = per_hour * config.traffic_percent / 100 if per_hour else None
    return [
        plan(rule, baseline=rule.baseline, canary_per_hour=canary_per_hour)
        if rule.baseline
        else f"{rule.metric}: no baseline to size for: set `baseline:` on the guardrail (prod's usual rate, "
        "or for a quantile the share of prod's values between it and the allowance)"
        for rule in config.rules
    ]


def unreachable(config: Settings) -> list[str]:
    """Each guardrail whose decision :func:`plans` expects only after ``max_duration`` at the declared traffic: a
    canary that would end ``inconclusive`` (empty without ``max_duration``, ``traffic_per_hour`` or a baseline)."""
    if config.max_duration is None:
        return []
    hours = config.max_duration.total_seconds() / 3600
    found = []
    for sized in plans(config):
        if isinstance(sized, str) or sized.hours_equal is None or sized.hours_twice is None:
            continue
        needs = max(sized.hours_equal, sized.hours_twice)
        if needs > hours:
            found.append(
                f"{sized.metric} {sized.part}: a decision takes about {needs:,.1f} h at the declared traffic "
                f"({max(sized.pass_equal, sized.fail_twice):,} requests per arm), longer than max_duration "
                f"({hours:,.1f} h): the canary would end inconclusive; raise traffic_percent or max_duration, "
                "or widen the allowance (`regops canary plan` sizes it)"
            )
    return found


def plan(rule: Rule, *, baseline: float, canary_per_hour: float | None = None, power: float = 0.95) -> SamplePlan:
    """The samples :func:`check` needs for ``rule`` (its first part), at prod's ``baseline``.

    ``baseline`` is prod's rate for a rate, and for a quantile the share of prod's values
    between its quantile and the allowance (e.g. 0.004: 0.4 % of requests are slower
    than p99 but faster than p99 +10 %). Quantile bounds are at alpha/2 on each arm.
    """
    if rule.kind == "rate":
        tag, (equal, twice) = _rate_plan(rule, baseline)
        sizes = tuple(needed(sd, gap, alpha=rule.alpha, power=power) for sd, gap in (equal, twice))
    else:
        q = rule.quantile or 0.5
        alpha = rule.alpha / 2 if rule.relative else rule.alpha
        n = needed(math.sqrt(q * (1 - q)), baseline / 2, alpha=alpha, power=power)
        tag, sizes = _parts_tags(rule)[0], (n, n)
    hours = tuple(None if not canary_per_hour else size / canary_per_hour for size in sizes)
    return SamplePlan(rule.metric, tag, sizes[0], sizes[1], hours[0], hours[1])


def _rate_plan(rule: Rule, p: float) -> tuple[str, tuple[tuple[float, float], tuple[float, float]]]:
    """(sd per pair, gap) for a canary equal to prod and for one at twice the allowance, for the rule's first part."""
    var = _variance
    if rule.relative:
        a = rule.max_increase if rule.max_increase is not None else -(rule.max_decrease or 0.0)
        factor, twice = 1 + a, min(max(p * (1 + 2 * a), 0.0), 1.0)
        equal_sd = math.sqrt(var(p) * (1 + factor**2))
        return _parts_tags(rule)[0], ((equal_sd, abs(a) * p), (math.sqrt(var(twice) + factor**2 * var(p)), abs(a) * p))
    limit = rule.max if rule.max is not None else rule.min or 0.0
    twice = min(max(p + 2 * (limit - p), 0.0), 1.0)
    return _parts_tags(rule)[0], ((math.sqrt(var(p)), abs(limit - p)), (math.sqrt(var(twice)), abs(limit - p)))


def _variance(rate: float) -> float:
    return max(rate, 1e-12) * (1 - rate)


def _parts_tags(rule: Rule) -> list[str]:
    tags = [f"+{_show_fraction(rule.max_increase)}"] if rule.max_increase is not None else []
    tags += [f"-{_show_fraction(rule.max_decrease)}"] if rule.max_decrease is not None else []
    return tags + [tag for tag, bound in (("max", rule.max), ("min", rule.min)) if bound is not None]


_NEVER: Final = 10**12


@dataclass(frozen=True)
class _Part:
    """One part of a rule (``+10%``, ``max``, …) bounded: what a verdict, its reason and its record need.

    ``low``/``high`` bound the canary's excess over prod as a fraction (relative parts)
    or its value (absolute parts); ``sd``/``gap`` give the sample a decision still needs.
    """

    verdict: Verdict
    tag: str
    limit: float
    low: float | None
    high: float | None
    detail: str
    sd: float = 0.0
    gap: float = 0.0


def _bounds(part: _Part | None) -> dict[str, Any]:
    """A result's recorded bounds and method (none before any bound was computed)."""
    return {"lower": part.low, "upper": part.high, "method": METHOD} if part else {}


def _judge(worse: bool, better: bool) -> Verdict:
    return "fail" if worse else "pass" if better else "pending"


# --- rates -------------------------------------------------------------------


def _check_rate(rule: Rule, canary: Counts, prod: Counts, *, min_requests: int) -> MetricResult:
    def result(verdict: Verdict, reason: str, part: _Part | None = None) -> MetricResult:
        c, pr = canary.rate, prod.rate
        limit = part.limit if part else None
        return MetricResult(
            rule.metric, "rate", verdict, c, pr, limit, canary.requests, prod.requests, None, reason, **_bounds(part)
        )

    for side, counts in (("canary", canary), ("prod", prod)):
        if not 0 <= counts.errors <= counts.requests:
            reason = (
                f"{rule.metric}: {side} has {counts.errors} errors in {counts.requests} requests: check the queries"
            )
            return result("inconclusive", reason)
    short = _shortfall(rule, canary.requests, prod.requests, min_requests=min_requests)
    if short:
        return result("pending", short)
    part = _deciding([_rate_part(rule, canary, prod, part) for part in _rate_parts(rule, prod)])
    return result(part.verdict, _reason(rule, part, canary.rate, prod.rate), part)


def _rate_parts(rule: Rule, prod: Counts) -> list[tuple[str, float, float, bool]]:
    """(tag, factor on prod's rate (0: an absolute limit), the limit at prod's estimate, higher is worse)."""
    parts: list[tuple[str, float, float, bool]] = []
    if rule.max_increase is not None:
        parts.append((f"+{_show_fraction(rule.max_increase)}", 1 + rule.max_increase, 0.0, True))
    if rule.max is not None:
        parts.append(("max", 0.0, rule.max, True))
    if rule.max_decrease is not None:
        parts.append((f"-{_show_fraction(rule.max_decrease)}", 1 - rule.max_decrease, 0.0, False))
    if rule.min is not None:
        parts.append(("min", 0.0, rule.min, False))
    return [(tag, f, f * prod.rate if f else limit, worse) for tag, f, limit, worse in parts]


def _rate_part(rule: Rule, canary: Counts, prod: Counts, part: tuple[str, float, float, bool]) -> _Part:
    """The bounds of ``canary - limit`` (the limit a multiple of prod's rate, or fixed) and what they show."""
    tag, factor, limit, higher_is_worse = part
    t = min(canary.requests, prod.requests) if factor else canary.requests
    variance = _bernoulli_variance(canary) / canary.requests
    if factor:
        variance += factor**2 * _bernoulli_variance(prod) / prod.requests
    sd = math.sqrt(variance * t)
    radius = sd * boundary(t, rule.alpha) / t
    gap = canary.rate - limit
    low, high = gap - radius, gap + radius
    verdict = _judge(low > 0, high <= 0) if higher_is_worse else _judge(high < 0, low >= 0)
    shown = _excess(low, high, factor=factor, limit=limit, prod=prod.rate)
    detail = _rate_detail(rule, shown, tag=tag, relative=bool(factor))
    return _Part(verdict, tag, limit, shown[0], shown[1], detail, sd=sd, gap=abs(gap))


def _excess(low: float, high: float, *, factor: float, limit: float, prod: float) -> tuple[float | None, float | None]:
    """Bounds of ``canary - limit`` as shown: the canary's excess over prod (relative), or its rate (absolute)."""
    if not factor:
        return low + limit, high + limit
    if prod <= 0:
        return None, None
    return low / prod + factor - 1, high / prod + factor - 1


def _bernoulli_variance(counts: Counts) -> float:
    # Half a pseudo-count each way: no errors in n requests is not certainty of none to come.
    p = (counts.errors + 0.5) / (counts.requests + 1)
    return p * (1 - p)


def _rate_detail(rule: Rule, shown: tuple[float | None, float | None], *, tag: str, relative: bool) -> str:
    low, high = shown
    if relative:
        return f"{_show_fraction(rule.confidence)} bounds of the excess over prod: {_signed(low)} to {_signed(high)}"
    return f"{_show_fraction(rule.confidence)} bounds: {show('rate', low)} to {show('rate', high)}"


# --- quantiles ---------------------------------------------------------------


def _check_quantile(rule: Rule, canary: Distribution, prod: Distribution, *, min_requests: int) -> MetricResult:
    n_c, n_p = canary.total, prod.total

    def result(
        verdict: Verdict, c: float | None, p: float | None, reason: str, part: _Part | None = None
    ) -> MetricResult:
        limit = part.limit if part else None
        return MetricResult(rule.metric, rule.kind, verdict, c, p, limit, n_c, n_p, None, reason, **_bounds(part))

    for side, dist in (("canary", canary), ("prod", prod)):
        problem = _malformed(dist) if dist.total else None  # no values yet is pending, not broken
        if problem:
            return result("inconclusive", None, None, f"{rule.metric}: {side} buckets {problem}")
    c = canary.quantile(rule.quantile or 0.5) if n_c else None
    p = prod.quantile(rule.quantile or 0.5) if n_p else None
    short = _shortfall(rule, n_c, n_p, min_requests=min_requests)
    if short or c is None or p is None:
        return result("pending", c, p, short or f"{rule.metric}: no values yet")
    part = _deciding(_quantile_parts(rule, canary, prod))
    return result(part.verdict, c, p, _reason(rule, part, c, p), part)


def quantile_bounds(dist: Distribution, q: float, *, alpha: float) -> tuple[float, float]:
    """Anytime-valid one-sided ``1 - alpha`` bounds (lower, upper) of the ``q``-quantile (Howard & Ramdas 2022).

    Of n values, the count below the true quantile is a sum of n Bernoulli(q) draws; the
    normal-mixture boundary on it (variance q(1-q) per value) bounds the quantile's rank
    at every n, and a rank becomes a value as :meth:`Distribution.value_at_rank` interpolates.
    A rank past the last finite bucket is unbounded (±inf).
    """
    n = dist.total
    radius = math.sqrt(q * (1 - q) * n) * boundary(n, alpha) / math.sqrt(n)
    low_rank, high_rank = n * q - radius, n * q + radius
    finite = dist.cumulative[-2] if len(dist.cumulative) > 1 else 0.0
    low = dist.value_at_rank(low_rank) if low_rank > 0 else -math.inf
    high = dist.value_at_rank(high_rank) if high_rank <= finite else math.inf
    return low, high


def _quantile_parts(rule: Rule, canary: Distribution, prod: Distribution) -> list[_Part]:
    q, alpha, level = rule.quantile or 0.5, rule.alpha, f"{_show_fraction(rule.confidence)} bounds"
    estimate = prod.quantile(q)
    parts = []
    for allowance, upper in ((rule.max_increase, True), (rule.max_decrease, False)):
        if allowance is None:
            continue
        sign = 1 if upper else -1  # max_increase: the canary is held down; max_decrease: held up
        # Bonferroni: each arm's bounds at alpha/2 hold together with confidence ≥ 1 - alpha.
        (c_low, c_high), (p_low, p_high) = (quantile_bounds(d, q, alpha=alpha / 2) for d in (canary, prod))
        if upper:
            verdict = _judge(c_low > _allow(p_high, allowance), c_high <= _allow(p_low, allowance))
        else:
            verdict = _judge(c_high < _allow(p_low, -allowance), c_low >= _allow(p_high, -allowance))
        low, high = _ratio(c_low, p_high), _ratio(c_high, p_low)
        tag = f"{'+' if upper else '-'}{_show_fraction(allowance)}"
        detail = f"{level}: canary {_interval(rule, c_low, c_high)}, prod {_interval(rule, p_low, p_high)}"
        parts.append(_Part(verdict, tag, _allow(estimate, sign * allowance), low, high, detail))
    for bound, upper in ((rule.max, True), (rule.min, False)):
        if bound is not None:
            c_low, c_high = quantile_bounds(canary, q, alpha=alpha)
            verdict = _judge(c_low > bound, c_high <= bound) if upper else _judge(c_high < bound, c_low >= bound)
            detail = f"{level}: canary {_interval(rule, c_low, c_high)}"
            parts.append(_Part(verdict, "max" if upper else "min", bound, c_low, c_high, detail))
    return parts


def _ratio(canary: float, prod: float) -> float | None:
    """The canary's excess over prod as a fraction, when both are finite and prod is positive."""
    return canary / prod - 1 if prod > 0 and math.isfinite(canary) and math.isfinite(prod) else None


def _interval(rule: Rule, low: float, high: float) -> str:
    return f"{show(rule.kind, low)} to {show(rule.kind, high)}"


def _allow(value: float, allowance: float) -> float:
    # value·(1 ± a) for positive values; on a negative gauge, +a must still loosen the limit upward.
    return value + allowance * abs(value)


def _malformed(dist: Distribution) -> str | None:
    if len(dist.bounds) != len(dist.cumulative) or len(dist.bounds) < 2:
        return "need one count per bound and at least one finite bound"
    if dist.bounds[-1] != math.inf or any(a >= b for a, b in zip(dist.bounds, dist.bounds[1:], strict=False)):
        return "must ascend and end with +Inf"
    if any(not math.isfinite(c) or c < 0 for c in dist.cumulative):
        return "have a negative or non-finite count"
    return None


# --- shared ------------------------------------------------------------------


def _shortfall(rule: Rule, n_canary: int, n_prod: int, *, min_requests: int) -> str | None:
    """Why the metric must wait for data, or None: prod's count matters only to relative rules."""
    unit = "values" if rule.kind == "gauge" else "requests"
    needed = max(min_requests, 1)
    short = [f"canary has {n_canary} of {needed} {unit}"] if n_canary < needed else []
    if rule.relative and n_prod < needed:
        short.append(f"prod has {n_prod} of {needed} {unit}")
    return f"{rule.metric}: waiting for data: {', '.join(short)}" if short else None


def _deciding(parts: list[_Part]) -> _Part:
    """A rule fails if any part fails and passes only if every part passes; else the first undecided part."""
    return next(p for v in ("fail", "pending", "pass") for p in parts if p.verdict == v)


def _reason(rule: Rule, part: _Part, canary: float, prod: float) -> str:
    """``error_rate within +10% of prod: upper bound +6.1% (0.41% vs prod 0.40%, limit 0.44%; 95% bounds …)``."""
    label = "" if rule.quantile is None else f" {_show_quantile(rule.quantile)}"
    relative = part.tag not in ("max", "min")
    allowance = f"{part.tag} of prod" if relative else f"{part.tag} {show(rule.kind, part.limit)}"
    held_down = part.tag.startswith("+") or part.tag == "max"
    shown = {
        "pass": f"within {allowance}: {'upper' if held_down else 'lower'} bound {_bound(rule, part, upper=held_down)}",
        "fail": f"worse than {allowance}: {'lower' if held_down else 'upper'} bound "
        + _bound(rule, part, upper=not held_down),
        "pending": f"not yet shown within {allowance} or worse{_still_needed(rule, part)}",
    }[part.verdict]
    numbers = f"{show(rule.kind, canary)} vs prod {show(rule.kind, prod)}, limit {show(rule.kind, part.limit)}"
    return f"{rule.metric}{label} {shown} ({numbers}; {part.detail})"


def _signed(fraction: float | None) -> str:
    return "n/a" if fraction is None else f"{fraction * 100:+.3g}%"


def _still_needed(rule: Rule, part: _Part) -> str:
    """``: about 412000 requests per arm at these rates`` (rates: from the current estimates)."""
    if not part.sd:
        return ""
    n = needed(part.sd, part.gap, alpha=rule.alpha)
    return ": no sample decides at these rates" if n >= _NEVER else f": about {n} requests per arm at these rates"


def _bound(rule: Rule, part: _Part, *, upper: bool) -> str:
    value = part.high if upper else part.low
    return _signed(value) if part.tag not in ("max", "min") else show(rule.kind, value)


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


def _show_fraction(value: float) -> str:
    return f"{value * 100:.4g}%"


def _show_quantile(q: float) -> str:
    return f"p{q * 100:.4g}"


def _show_p(p: float) -> str:
    return "p<0.0001" if p < 0.0001 else f"p={p:.2g}"


def _round(value: float) -> float:
    return float(f"{value:.4g}")


# --- a model's canary settings and a checked canary ----------------------------------------------

# The verdicts a pull request follows (pass: to prod; fail: out of staging), and the
# word each verdict is recorded as in the version file's ``canary.result``.
FINAL: tuple[Verdict, ...] = ("pass", "fail")
RECORDED: dict[Verdict, Literal["passed", "failed", "pending", "inconclusive"]] = {
    "pass": "passed",
    "fail": "failed",
    "pending": "pending",
    "inconclusive": "inconclusive",
}


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


# The verdict each word of ``canary.result`` records (aborted records none).
_RECORDED_AS: dict[str, Verdict] = {word: verdict for verdict, word in RECORDED.items()}


def recorded(canary: Mapping[str, Any]) -> Decision | None:
    """The decision a version file's ``canary`` holds (what ``canary check`` wrote); None for an aborted canary."""
    verdict = _RECORDED_AS.get(canary.get("result", ""))
    if verdict is None:
        return None
    metrics = tuple(MetricResult.from_record(raw) for raw in canary.get("report") or ())
    return Decision(verdict, metrics, canary.get("summary") or f"{verdict}: no check recorded")


@dataclass(frozen=True)
class Checked:
    """One canary checked: the version in staging, the prod version it was held against, the decision.

    ``pull`` says what became of the pull request a final verdict calls for (``canary pr``).
    """

    ref: str
    model: str
    version: str
    prod: str | None
    decision: Decision
    pull: str | None = None
