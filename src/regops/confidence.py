"""The canary's anytime-valid statistics: observations, confidence sequences, and the sample a decision needs.

The bounds are anytime-valid confidence sequences (:func:`boundary`: the one-sided
normal-mixture boundary of Howard et al. 2021, with the observed variance as in
Waudby-Smith et al. 2024), so a job that checks every 15 minutes keeps P(false fail)
and P(false pass) each ≤ alpha over the whole canary, not per look.

Rates (:class:`Counts`): a confidence sequence for ``p_c - f·p_p`` (``max_increase = a``:
f = 1+a; ``max_decrease``: f = 1-a) or ``p_c - m`` (``max``/``min``), with each arm's
Bernoulli variance (half a pseudo-count: no errors is not certainty) at t = min(n_c, n_p)
(:func:`rate_bounds`).

Quantiles (:class:`Distribution`: Prometheus histogram buckets or raw samples): the
quantile confidence sequences of Howard & Ramdas 2022 (:func:`quantile_bounds`): the
boundary on the count of values below the quantile bounds its rank at every n, and a rank
becomes a value by linear interpolation within its bucket, as ``histogram_quantile`` does.

:func:`plan` says how many requests a decision needs (``regops canary plan``). Pure, like
:mod:`regops.canary`, which turns these bounds into verdicts.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import accumulate, compress
from math import erf
from operator import lt, ne
from statistics import NormalDist
from typing import Any, Final, NamedTuple

from regops.guardrails import Rule, Settings, show_fraction

_NORMAL = NormalDist()
_SQRT2: Final = math.sqrt(2.0)  # as statistics has it, for NormalDist().cdf's bits in boundary()
_SQRT_2PI: Final = math.sqrt(2 * math.pi)


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
        # Each run of equal values is one bucket, counted through its end: where the next run starts.
        starts = list(map(ne, values, values[1:]))
        bounds = [*values[:1], *compress(values[1:], starts), float("inf")]
        ends = [*compress(range(1, len(values)), starts), len(values)] if values else []
        return cls(tuple(bounds), (*ends, len(values)))

    @property
    def total(self) -> int:
        return int(self.cumulative[-1]) if self.cumulative else 0

    def value_at_rank(self, rank: float) -> float:
        """The value at ``rank`` (0 to :attr:`total`), interpolated as Prometheus' ``histogram_quantile``
        (:func:`value_at_rank`)."""
        return float(value_at_rank(self.bounds, self._evened, rank))

    @cached_property
    def _evened(self) -> list[float]:
        """The counts with dips evened out (:func:`evened`), computed once per observation."""
        return evened(self.cumulative)

    def quantile(self, q: float) -> float:
        """The ``q``-quantile's point estimate, as ``histogram_quantile(q, …)`` computes it."""
        return self.value_at_rank(q * self.cumulative[-1])

    def quantile_bound(self, q: float, *, alpha: float, upper: bool) -> float:
        """A one-sided ``1 - alpha`` confidence bound of the ``q``-quantile (see the module docstring)."""
        n = self.cumulative[-1]
        half = _NORMAL.inv_cdf(1 - alpha) * math.sqrt(n * q * (1 - q))
        return self.value_at_rank(n * q + half if upper else n * q - half)


Observation = Counts | Distribution


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
    high, twice, root = math.sqrt(2 * v * (target + math.log(2))), 2 * v, math.sqrt(v)

    def below(s: float) -> bool:  # the martingale at S = s is still below 1/alpha (in logs, less its constant)
        # log Φ(s / root), Φ written out as NormalDist().cdf computes it (the same bits), without its method call
        return s * s / twice + math.log(0.5 * (1.0 + erf(s / root / _SQRT2))) < target

    return _bisect(below, *_near_root(target, twice, root, high)) or _bisect(below, 0.0, high)


def _bisect(below: Callable[[float], bool], low: float, high: float) -> float:
    """The least float in (low, high] at which ``below`` fails, halving until the bounds are adjacent floats (0.0 if
    a bracket from ``low`` > 0 does not hold it). ``below`` only ever changes once (a sum of rounded increasing
    functions does not decrease), so every bracket of that float finds that float: a narrow one in fewer halvings."""
    if low and (not below(low) or below(high)):
        return 0.0
    for _ in range(80):
        s = (low + high) / 2
        if s in (low, high):  # the bounds are adjacent floats: no later halving moves them
            break
        low, high = (s, high) if below(s) else (low, s)
    return high


def _near_root(target: float, twice: float, root: float, high: float) -> tuple[float, float]:
    """A narrow bracket (low, high) of :func:`boundary`'s root, from Newton's steps down from ``high`` (above the
    root: there the Φ term is at most 1), or (0.0, ``high``) when they do not close in on it."""
    s, step = high, high
    for _ in range(12):
        if abs(step) < s * 1e-15:
            break
        z = s / root
        log_phi = math.log(0.5 * (1.0 + erf(z / _SQRT2)))
        slope = 2 * s / twice + math.exp(-0.5 * z * z - log_phi) / (_SQRT_2PI * root)
        step = min((s * s / twice + log_phi - target) / slope, s / 2)  # never past 0
        s -= step
    low, top = s * (1 - 1e-13), min(s * (1 + 1e-13), high)
    return (low, top) if 0 < low < top and abs(step) < s * 1e-15 else (0.0, high)


def needed(sd: float, gap: float, *, alpha: float, power: float = 0.5) -> int:
    """The sample per arm at which a mean's bound fits within ``gap`` of its true value with probability ``power``.

    The bound is ``sd·u(n)/n`` (:func:`boundary`) from an estimate that itself strays up
    to ``z_power·sd/sqrt(n)`` (power 0.5: no margin, the sample at the current estimates).
    """
    if gap <= 0 or sd <= 0:
        return 0 if sd <= 0 < gap else NEVER
    z = _NORMAL.inv_cdf(power)

    def short(k: int) -> bool:
        n = _grid(k)
        return sd * (boundary(n, alpha) + z * math.sqrt(n)) / n > gap

    # Samples on a grid 2 % apart (2^(k/32)): the boundary's cache serves every later call.
    low, high = 0, 32
    while short(high):
        if _grid(high) >= NEVER:
            return NEVER
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
    tags = [f"+{show_fraction(rule.max_increase)}"] if rule.max_increase is not None else []
    tags += [f"-{show_fraction(rule.max_decrease)}"] if rule.max_decrease is not None else []
    return tags + [tag for tag, bound in (("max", rule.max), ("min", rule.min)) if bound is not None]


NEVER: Final = 10**12


class RateBounds(NamedTuple):
    """Anytime-valid bounds of ``gap = canary's rate - limit``: ``gap ± radius``; ``sd`` per pair of requests."""

    gap: Any
    radius: Any
    limit: Any
    sd: Any

    @property
    def low(self) -> Any:
        return self.gap - self.radius

    @property
    def high(self) -> Any:
        return self.gap + self.radius


def rate_bounds(
    canary: tuple[Any, int],
    prod: tuple[Any, int],
    *,
    factor: float,
    fixed: float,
    alpha: float,
    sqrt: Callable[[Any], Any] = math.sqrt,
) -> RateBounds:
    """The ``1 - alpha`` confidence sequence of ``p_c - limit`` at ``(errors, requests)`` of each arm.

    The limit is ``factor`` times prod's rate, or ``fixed`` when ``factor`` is 0 (then prod is not used).
    Written in arithmetic alone, so that the errors may also be arrays: many canaries at the same
    requests at once (numpy arrays, with ``sqrt=numpy.sqrt``), by the very formula :func:`regops.canary.check` uses.
    """
    (c_errors, c_requests), (p_errors, p_requests) = canary, prod
    t = min(c_requests, p_requests) if factor else c_requests
    variance = bernoulli_variance(c_errors, c_requests) / c_requests
    if factor:
        variance = variance + factor**2 * bernoulli_variance(p_errors, p_requests) / p_requests
    sd = sqrt(variance * t)
    limit = factor * (p_errors / p_requests) if factor else fixed
    return RateBounds(c_errors / c_requests - limit, sd * boundary(t, alpha) / t, limit, sd)


def bernoulli_variance(errors: Any, requests: int) -> Any:
    """An arm's variance per request. Half a pseudo-count each way: no errors in n requests is not certainty of none."""
    p = (errors + 0.5) / (requests + 1)
    return p * (1 - p)


def quantile_bounds(dist: Distribution, q: float, *, alpha: float) -> tuple[float, float]:
    """Anytime-valid one-sided ``1 - alpha`` bounds (lower, upper) of the ``q``-quantile: :func:`quantile_bounds_of`."""
    return quantile_bounds_of((dist.bounds, dist.cumulative, dist.total), q, alpha=alpha)


Buckets = tuple[Sequence[float], Sequence[Any], int]  # bounds, cumulative counts per bucket, total
Where = Callable[[Any, Any, Any], Any]


def pick(condition: Any, yes: Any, no: Any) -> Any:
    """``yes`` if ``condition`` else ``no``: ``numpy.where`` for one number."""
    return yes if condition else no


def quantile_bounds_of(buckets: Buckets, q: float, *, alpha: float, where: Where = pick) -> tuple[Any, Any]:
    """Anytime-valid one-sided ``1 - alpha`` bounds (lower, upper) of the ``q``-quantile (Howard & Ramdas 2022).

    Of n values, the count below the true quantile is a sum of n Bernoulli(q) draws; the
    normal-mixture boundary on it (variance q(1-q) per value) bounds the quantile's rank
    at every n, and a rank becomes a value as :func:`value_at_rank` interpolates.
    A rank past the last finite bucket is unbounded (±inf). The counts per bucket may be
    arrays of many distributions of the same total at once (with ``where=numpy.where``).
    """
    bounds, cumulative, n = buckets
    radius = math.sqrt(q * (1 - q) * n) * boundary(n, alpha) / math.sqrt(n)
    low_rank, high_rank = n * q - radius, n * q + radius
    finite = cumulative[-2] if len(cumulative) > 1 else 0.0
    even = evened(cumulative, where)
    low = value_at_rank(bounds, even, low_rank, where) if low_rank > 0 else -math.inf
    return low, where(high_rank <= finite, value_at_rank(bounds, even, high_rank, where), math.inf)


def evened(cumulative: Sequence[Any], where: Where = pick) -> list[Any]:
    """Counts with dips evened out, each at least the one below, as Prometheus does (scrapes of a histogram
    taken at slightly different times)."""
    if where is pick:  # one distribution: the builtin, as fast on the thousands of buckets raw samples make
        head = cumulative[:-1]
        if head and all(map(lt, head, head[1:])):  # raw samples ascend: each count is its own running maximum
            return [*head, max(head[-1], cumulative[-1])]
        return list(accumulate(cumulative, max))
    return list(accumulate(cumulative, lambda below, count: where(count > below, count, below)))


def value_at_rank(bounds: Sequence[float], cumulative: Sequence[Any], rank: Any, where: Where = pick) -> Any:
    """The value at ``rank`` (0 to the total) of :func:`evened` counts, interpolated as ``histogram_quantile``.

    Within a bucket values are taken as spread evenly from the bucket below's bound (0 below
    the first bucket, unless its bound is ≤ 0: then the bound itself); a rank in the ``+Inf``
    bucket is the highest finite bound; rank 0 skips empty leading buckets. The value is in the
    first bucket whose count reaches the rank. Written in arithmetic and ``where`` alone, so that
    each count may be an array of many distributions at once (``where=numpy.where``).
    """
    last = len(cumulative) - 1
    rank = where(rank > 0, rank, 0.0)
    rank = where(rank < cumulative[-1], rank, cumulative[-1])
    value = bounds[last - 1]
    for b in reversed(_tried(cumulative, rank, where)):
        count = cumulative[b]
        start, below = (bounds[b - 1], cumulative[b - 1]) if b else (min(bounds[0], 0.0), 0.0)
        width = count - below
        inside = start + (bounds[b] - start) * (rank - below) / (width + (width == 0))  # 0-wide: never chosen
        value = where(_reaches(count, rank), inside, value)
    return value


def _tried(cumulative: Sequence[Any], rank: Any, where: Where) -> range:
    """The buckets that may hold ``rank`` (not the ``+Inf`` one): for one distribution, the first whose count
    reaches it (a binary search: raw samples make thousands of buckets); for many at once, those from the first
    that any distribution's reaches to the first that every one's reaches (the counts ascend: below, none is
    chosen; above, each is overwritten by a lower one)."""
    last = len(cumulative) - 1
    if where is not pick:
        holds = [
            lambda b: bool(_reaches(cumulative[b], rank).any()),
            lambda b: bool(_reaches(cumulative[b], rank).all()),
        ]
        first_any, first_all = (bisect_left(range(last), True, key=h) for h in holds)
        start = min(first_any, last - 1)  # one bucket at least: the value takes the arrays' shape
        return range(max(start, 0), min(max(first_all, start) + 1, last))
    b = bisect_right(cumulative, 0.0, hi=last) if rank == 0 else bisect_left(cumulative, rank, hi=last)
    return range(b, min(b + 1, last))


def _reaches(count: Any, rank: Any) -> Any:
    """Whether a bucket's count reaches ``rank`` (and the bucket is not empty): the bucket :func:`value_at_rank` picks
    is the first that does."""
    return (count >= rank) & (count > 0)
