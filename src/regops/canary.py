"""The canary decision: does the staging version hold its guardrails against prod?

Pure: observations in, a verdict with its numbers out. Reading the metrics is
``adapters/metrics.py``; writing the result and opening pull requests is ``flows/canary.py``;
the guardrails as configured are :mod:`regops.guardrails`, the bounds :mod:`regops.confidence`.

A guardrail (:class:`Rule`) is checked on one metric (:func:`check`), and the
metrics' results make one :class:`Decision` (:func:`decide`). Each guardrail has three
outcomes, each on evidence at the configured ``confidence`` (alpha = 1 - confidence):
``fail`` when the canary is shown worse than the allowance, ``pass`` only when it is shown
within it (non-inferiority), else ``pending`` — and ``inconclusive`` once ``max_requests``
or ``max_duration`` pass without a decision.

Rates are recorded as bounds of the canary's excess over prod (relative) or of its rate
(absolute). Relative quantile rules compare the canary's bounds with prod's, each at
alpha/2 (Bonferroni).

A rule with several parts fails if any part fails and passes only if all pass. A metric
with fewer than ``min_requests`` values on an arm it needs is ``pending``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from operator import ge
from typing import Any, Literal, NamedTuple

from regops.confidence import (
    METHOD,
    NEVER,
    Buckets,
    Counts,
    Distribution,
    Observation,
    RateBounds,
    SamplePlan,
    Where,
    boundary,
    needed,
    pick,
    plan,
    plans,
    quantile_bounds,
    quantile_bounds_of,
    rate_bounds,
    unreachable,
)
from regops.guardrails import CanaryConfigError, Rule, Settings, settings, show, show_fraction

# The canary's names in one place: the decision's own, and those of the guardrails and bounds it decides on.
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
    "quantile_evidence",
    "rate_evidence",
    "recorded",
    "settings",
    "show",
    "unavailable",
    "unreachable",
]

Verdict = Literal["pass", "fail", "pending", "inconclusive"]
_PRECEDENCE: tuple[Verdict, ...] = ("fail", "inconclusive", "pending", "pass")


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
    evidence = rate_evidence(rule, (canary.errors, canary.requests), (prod.errors, prod.requests))
    part = _deciding([_rate_part(rule, *pair, prod) for pair in zip(_rate_parts(rule), evidence, strict=True)])
    return result(part.verdict, _reason(rule, part, canary.rate, prod.rate), part)


def _rate_parts(rule: Rule) -> list[tuple[str, float, float, bool]]:
    """(tag, factor on prod's rate (0: an absolute limit), the absolute limit, higher is worse)."""
    parts: list[tuple[str, float, float, bool]] = []
    if rule.max_increase is not None:
        parts.append((f"+{show_fraction(rule.max_increase)}", 1 + rule.max_increase, 0.0, True))
    if rule.max is not None:
        parts.append(("max", 0.0, rule.max, True))
    if rule.max_decrease is not None:
        parts.append((f"-{show_fraction(rule.max_decrease)}", 1 - rule.max_decrease, 0.0, False))
    if rule.min is not None:
        parts.append(("min", 0.0, rule.min, False))
    return parts


def rate_evidence(
    rule: Rule, canary: tuple[Any, int], prod: tuple[Any, int], *, sqrt: Callable[[Any], Any] = math.sqrt
) -> list[tuple[RateBounds, Any, Any]]:
    """Per part of a rate rule: its bounds, whether they show the canary worse, and whether within the allowance.

    ``canary``/``prod`` are ``(errors, requests)``; the errors may be arrays of many canaries at once
    (see :func:`regops.confidence.rate_bounds`): the simulations decide 2,000 canaries a look through this.
    """
    found = []
    for _, factor, fixed, higher_is_worse in _rate_parts(rule):
        bounds = rate_bounds(canary, prod, factor=factor, fixed=fixed, alpha=rule.alpha, sqrt=sqrt)
        low, high = bounds.low, bounds.high
        found.append((bounds, *((low > 0, high <= 0) if higher_is_worse else (high < 0, low >= 0))))
    return found


def _rate_part(
    rule: Rule, part: tuple[str, float, float, bool], evidence: tuple[RateBounds, bool, bool], prod: Counts
) -> _Part:
    """A rate part's verdict, and its bounds as shown: the canary's excess over prod (relative) or its rate."""
    tag, factor = part[:2]
    bounds, worse, within = evidence
    shown = _excess(bounds.low, bounds.high, factor=factor, limit=bounds.limit, prod=prod.rate)
    detail = _rate_detail(rule, shown, tag=tag, relative=bool(factor))
    return _Part(_judge(worse, within), tag, bounds.limit, *shown, detail, sd=bounds.sd, gap=abs(bounds.gap))


def _excess(low: float, high: float, *, factor: float, limit: float, prod: float) -> tuple[float | None, float | None]:
    """Bounds of ``canary - limit`` as shown: the canary's excess over prod (relative), or its rate (absolute)."""
    if not factor:
        return low + limit, high + limit
    if prod <= 0:
        return None, None
    return low / prod + factor - 1, high / prod + factor - 1


def _rate_detail(rule: Rule, shown: tuple[float | None, float | None], *, tag: str, relative: bool) -> str:
    low, high = shown
    if relative:
        return f"{show_fraction(rule.confidence)} bounds of the excess over prod: {_signed(low)} to {_signed(high)}"
    return f"{show_fraction(rule.confidence)} bounds: {show('rate', low)} to {show('rate', high)}"


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


class QuantileShown(NamedTuple):
    """One part of a quantile rule bounded: its allowance (relative) or bound (absolute), whether it holds the
    canary down, each arm's bounds (prod's only for a relative part), and whether they show it worse or within."""

    allowance: float
    relative: bool
    upper: bool
    canary: tuple[Any, Any]
    prod: tuple[Any, Any]
    worse: Any
    within: Any


def quantile_evidence(rule: Rule, canary: Buckets, prod: Buckets, *, where: Where = pick) -> list[QuantileShown]:
    """Per part of a quantile rule, the bounds and what they show (``+10%``, ``-5%``, then ``max``, ``min``).

    The counts per bucket may be arrays of many canaries of the same totals at once (see
    :func:`regops.confidence.quantile_bounds_of`): the simulations decide 2,000 canaries a look through this.
    """
    q, alpha, found = rule.quantile or 0.5, rule.alpha, []
    for allowance, upper in ((rule.max_increase, True), (rule.max_decrease, False)):
        if allowance is not None:  # max_increase: the canary is held down; max_decrease: held up
            # Bonferroni: each arm's bounds at alpha/2 hold together with confidence ≥ 1 - alpha.
            (c_low, c_high), (p_low, p_high) = (
                quantile_bounds_of(a, q, alpha=alpha / 2, where=where) for a in (canary, prod)
            )
            if upper:
                shown = (c_low > _allow(p_high, allowance), c_high <= _allow(p_low, allowance))
            else:
                shown = (c_high < _allow(p_low, -allowance), c_low >= _allow(p_high, -allowance))
            found.append(QuantileShown(allowance, True, upper, (c_low, c_high), (p_low, p_high), *shown))
    for bound, upper in ((rule.max, True), (rule.min, False)):
        if bound is not None:
            c_low, c_high = quantile_bounds_of(canary, q, alpha=alpha, where=where)
            shown = (c_low > bound, c_high <= bound) if upper else (c_high < bound, c_low >= bound)
            found.append(QuantileShown(bound, False, upper, (c_low, c_high), (math.nan, math.nan), *shown))
    return found


def _quantile_parts(rule: Rule, canary: Distribution, prod: Distribution) -> list[_Part]:
    level, estimate = f"{show_fraction(rule.confidence)} bounds", prod.quantile(rule.quantile or 0.5)
    parts = []
    for part in quantile_evidence(rule, _buckets(canary), _buckets(prod)):
        (c_low, c_high), (p_low, p_high), verdict = part.canary, part.prod, _judge(part.worse, part.within)
        if part.relative:
            tag = f"{'+' if part.upper else '-'}{show_fraction(part.allowance)}"
            detail = f"{level}: canary {_interval(rule, c_low, c_high)}, prod {_interval(rule, p_low, p_high)}"
            limit = _allow(estimate, part.allowance if part.upper else -part.allowance)
            parts.append(_Part(verdict, tag, limit, _ratio(c_low, p_high), _ratio(c_high, p_low), detail))
        else:
            detail = f"{level}: canary {_interval(rule, c_low, c_high)}"
            parts.append(_Part(verdict, "max" if part.upper else "min", part.allowance, c_low, c_high, detail))
    return parts


def _buckets(dist: Distribution) -> Buckets:
    return dist.bounds, dist.cumulative, dist.total


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
    if dist.bounds[-1] != math.inf or any(map(ge, dist.bounds, dist.bounds[1:])):
        return "must ascend and end with +Inf"
    if not all(map(math.isfinite, dist.cumulative)) or min(dist.cumulative) < 0:
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
    return ": no sample decides at these rates" if n >= NEVER else f": about {n} requests per arm at these rates"


def _bound(rule: Rule, part: _Part, *, upper: bool) -> str:
    value = part.high if upper else part.low
    return _signed(value) if part.tag not in ("max", "min") else show(rule.kind, value)


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
