"""The canary decision: rule parsing, each kind's test on hand-computed numbers, verdicts, and its error rates."""

from __future__ import annotations

import json
import math
from bisect import bisect_left
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from statistics import NormalDist
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from regops.canary import (
    METHOD,
    CanaryConfigError,
    Counts,
    Decision,
    Distribution,
    MetricResult,
    Rule,
    Verdict,
    boundary,
    check,
    decide,
    quantile_bounds,
    unavailable,
)
from regops.errors import RegopsError
from tests.test_canary_sequential import np

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
# Prometheus' default histogram buckets (seconds).
PROM_BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)
# Derandomized: CI sees the same examples every run; no example database written into the work tree.
PROPERTY = settings(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])


def rule(kind: str = "rate", confidence: float = 0.95, **fields: Any) -> Rule:
    return Rule.from_config({"metric": f"my_{kind}", "kind": kind, **fields}, confidence=confidence)


def result(verdict: Verdict, metric: str = "m") -> MetricResult:
    return MetricResult(metric, "rate", verdict, 0.01, 0.01, 0.011, 1000, 1000, 0.5, f"{metric} is {verdict}")


def upper_tail(z: float) -> float:
    return 1 - NormalDist().cdf(z)


# --- Rule.from_config ----------------------------------------------------------


def test_config_units_become_fractions_and_seconds_with_defaults_per_kind() -> None:
    latency = rule("latency", max="250ms", min="0.05s", max_increase="10%")
    assert (latency.max, latency.min, latency.max_increase, latency.quantile) == (0.25, 0.05, 0.10, 0.99)
    assert rule("latency", max=0.3).max == 0.3  # a bare number is already seconds
    rate = rule("rate", max="1.5%", min=0.001, max_decrease="5%")
    assert (rate.max, rate.min, rate.max_decrease, rate.quantile) == (0.015, 0.001, 0.05, None)
    gauge = rule("gauge", min=3)
    assert (gauge.min, gauge.quantile, gauge.confidence) == (3.0, 0.5, 0.95)
    assert rule("gauge", min=-2.5, quantile=0.1, confidence=0.99).quantile == 0.1
    assert rule("gauge", min=-2.5, confidence=0.9).alpha == pytest.approx(0.1)
    # The guardrail's own confidence wins over the policy's.
    own = Rule.from_config({"metric": "m", "kind": "rate", "max": "1%", "confidence": 0.99}, confidence=0.9)
    assert own.confidence == 0.99


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": "rate", "quantile": 0.99, "max": "1%"}, "a rate has no quantile: remove `quantile`"),
        ({"kind": "latency", "quantile": 0.99}, "no rule: set at least one of max_increase, max_decrease, max, min"),
        (
            {"kind": "latency", "max": "5%"},
            "max '5%': '%' does not fit a latency (a latency is in seconds: write 250ms",
        ),
        (
            {"kind": "rate", "max": "20ms"},
            "max '20ms': 'ms' does not fit a rate (a rate is a fraction: write 1.5% or 0.015)",
        ),
        ({"kind": "gauge", "min": "2s"}, "min '2s': 's' does not fit a gauge"),
        ({"kind": "rate", "max": 3}, "max 3 is not a rate between 0 and 1: write 1.5% or 0.015"),
        ({"kind": "latency", "max": "0.1s", "min": "200ms"}, "min 0.2 is above max 0.1: no canary could pass"),
        ({"kind": "gauge", "max_decrease": "100%"}, "max_decrease 100% allows any value"),
        (
            {"kind": "gauge", "max_increase": 0.1},
            "max_increase 0.1 is not a relative allowance: write a percentage such as 10%",
        ),
        (
            {"kind": "latency", "max": "fast"},
            "max 'fast' is not a number or a number with a unit (a latency is in seconds",
        ),
        ({"kind": "histogram", "max": 1}, "kind 'histogram' is not one of rate, latency, gauge"),
        ({"kind": "rate", "max": "1%", "confidence": 1.0}, "confidence 1.0 must be between 0 and 1"),
        (
            {"kind": "gauge", "max": 1, "quantile": 0.0},
            "quantile 0.0 does not fit a gauge: a rate has none, others need 0 < q < 1",
        ),
    ],
)
def test_config_errors_name_the_metric_and_the_fix(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(CanaryConfigError) as caught:
        Rule.from_config({"metric": "checkout", **fields}, confidence=0.95)
    assert isinstance(caught.value, RegopsError)
    assert caught.value.metric == "checkout"
    assert str(caught.value).startswith("canary guardrail 'checkout': ")
    assert message in str(caught.value)


def test_observations_of_the_wrong_kind_are_a_config_error() -> None:
    with pytest.raises(CanaryConfigError, match="a rate guardrail needs error and request counts, got buckets"):
        check(rule(max="1%"), Distribution.from_samples([1.0]), Counts(0, 1), min_requests=1)
    with pytest.raises(CanaryConfigError, match="a latency guardrail needs buckets or samples, got counts"):
        check(rule("latency", max=1), Counts(0, 1), Counts(0, 1), min_requests=1)


# --- rates ---------------------------------------------------------------------


def rate_radius(canary: Counts, prod: Counts, *, factor: float, alpha: float = 0.05) -> float:
    """The confidence sequence's half-width by hand: each arm's variance with half a pseudo-count, t = min(n)."""
    pc, pp = (canary.errors + 0.5) / (canary.requests + 1), (prod.errors + 0.5) / (prod.requests + 1)
    variance = pc * (1 - pc) / canary.requests + factor**2 * pp * (1 - pp) / prod.requests
    t = min(canary.requests, prod.requests) if factor else canary.requests
    return math.sqrt(variance * t) * boundary(t, alpha) / t


def test_rate_increase_by_hand_is_pending_until_the_bounds_leave_the_allowance() -> None:
    # p_c = 0.03, p_p = 0.02, limit 1.1 * 0.02 = 0.022: the gap 0.008 is within the bounds' half-width.
    canary, prod = Counts(30, 1000), Counts(200, 10_000)
    radius = rate_radius(canary, prod, factor=1.1)
    undecided = check(rule(max_increase="10%"), canary, prod, min_requests=1000)
    assert radius > 0.008 and undecided.verdict == "pending"
    assert (undecided.canary, undecided.prod, undecided.limit) == (0.03, 0.02, pytest.approx(0.022))
    assert undecided.lower == pytest.approx((0.008 - radius) / 0.02 + 0.1)
    assert undecided.upper == pytest.approx((0.008 + radius) / 0.02 + 0.1)
    assert undecided.method == METHOD and undecided.p_value is None
    # Ten times the data at the same rates: shown worse.
    canary, prod = Counts(3000, 100_000), Counts(20_000, 1_000_000)
    failed = check(rule(max_increase="10%"), canary, prod, min_requests=1000)
    low = (0.008 - rate_radius(canary, prod, factor=1.1)) / 0.02 + 0.1
    assert failed.verdict == "fail" and failed.lower == pytest.approx(low)
    assert failed.reason.startswith(f"my_rate worse than +10% of prod: lower bound +{low * 100:.3g}% (3.00% vs prod")


def test_rate_within_the_allowance_passes_and_says_by_how_much() -> None:
    canary, prod = Counts(1800, 100_000), Counts(20_000, 1_000_000)  # 1.8% vs 2.0%
    held = check(rule(max_increase="10%"), canary, prod, min_requests=1000)
    high = (0.018 - 0.022 + rate_radius(canary, prod, factor=1.1)) / 0.02 + 0.1
    assert held.verdict == "pass" and held.upper == pytest.approx(high) and high <= 0.1
    assert held.headline() == f"my_rate within +10% of prod: upper bound {high * 100:+.3g}%"


def test_rate_absolute_and_higher_is_better_rules_by_hand() -> None:
    # max 2%: 3% in 1000 requests; prod's 5 requests do not matter to an absolute rule.
    canary = Counts(30, 1000)
    radius = rate_radius(canary, Counts(0, 5), factor=0.0)
    result = check(rule(max="2%"), canary, Counts(0, 5), min_requests=1000)
    assert (result.lower, result.upper) == (pytest.approx(0.03 - radius), pytest.approx(0.03 + radius))
    assert result.verdict == ("fail" if 0.03 - radius > 0.02 else "pending")
    # A conversion rate held up (min 10%): 8% of 100,000 is shown below it; 12% shown above it.
    assert check(rule(min="10%"), Counts(8000, 100_000), Counts(0, 1), min_requests=100).verdict == "fail"
    assert check(rule(min="10%"), Counts(12_000, 100_000), Counts(0, 1), min_requests=100).verdict == "pass"
    assert (
        check(rule(max_decrease="5%"), Counts(9000, 100_000), Counts(100_000, 1_000_000), min_requests=100).verdict
        == "fail"
    )


def test_no_errors_is_not_certainty_and_several_rules_pass_only_when_all_pass() -> None:
    # Zero errors on both sides: the pseudo-count keeps the bounds open at 5000 requests.
    assert check(rule(max_increase="10%"), Counts(0, 5000), Counts(0, 5000), min_requests=1000).verdict == "pending"
    assert check(rule(max_increase="10%"), Counts(5000, 5000), Counts(0, 5000), min_requests=1000).verdict == "fail"
    strict = rule(max_increase="50%", max="1%")
    # 1.5% vs prod 1.2%: within +50% perhaps, but shown over the absolute 1%.
    failed = check(strict, Counts(1500, 100_000), Counts(12_000, 1_000_000), min_requests=1000)
    assert (failed.verdict, failed.limit) == ("fail", 0.01)
    assert failed.reason.startswith("my_rate worse than max 1.00%: lower bound")
    assert check(strict, Counts(500, 100_000), Counts(12_000, 1_000_000), min_requests=1000).verdict == "pass"


def test_inconsistent_counts_are_inconclusive_never_a_pass() -> None:
    broken = check(rule(max_increase="10%"), Counts(12, 10), Counts(3, 1000), min_requests=1)
    assert broken.verdict == "inconclusive"
    assert broken.reason == "my_rate: canary has 12 errors in 10 requests: check the queries"


# --- quantiles -----------------------------------------------------------------

BOUNDS = (0.1, 0.2, 0.4, 0.8, math.inf)
PROD = Distribution(BOUNDS, (400, 800, 960, 1000, 1000))
SLOW = Distribution(BOUNDS, (100, 300, 700, 1000, 1000))


def test_quantiles_interpolate_within_buckets_like_histogram_quantile() -> None:
    assert PROD.quantile(0.9) == pytest.approx(0.2 + 0.2 * 100 / 160)  # rank 900 in (0.2, 0.4]: 0.325
    assert PROD.quantile(0.2) == pytest.approx(0.05)  # the first bucket starts at 0
    overflow = Distribution((0.1, 0.5, math.inf), (10, 80, 100))
    assert overflow.quantile(0.99) == 0.5  # a rank in the +Inf bucket: the highest finite bound
    negative = Distribution((-1.0, 0.0, 1.0, math.inf), (10, 20, 40, 40))
    assert negative.quantile(0.1) == -1.0  # a first bound <= 0 is returned as is
    assert negative.quantile(0.75) == 0.5
    # A scrape that catches buckets at slightly different times may dip; it is evened out.
    assert Distribution((0.1, 0.2, math.inf), (50, 49, 100)).quantile(0.5) == pytest.approx(0.1)
    assert Distribution.from_samples([4.0, 1.0, 3.0, 2.0]).quantile(0.5) == 2.0
    assert Distribution.from_samples([4.0, 1.0, 3.0, 2.0]).quantile(0.375) == 1.5
    assert Distribution((0.1, 0.2, math.inf), (0, 10, 10)).value_at_rank(0) == 0.1  # empty buckets skipped


def test_latency_bounds_by_hand_are_the_quantile_confidence_sequence() -> None:
    # Rank half-width at n = 1000, q = 0.9, alpha/2 per arm: sqrt(0.9*0.1*1000) * u(1000) / sqrt(1000).
    half = math.sqrt(0.9 * 0.1) * boundary(1000, 0.025)
    low, high = quantile_bounds(SLOW, 0.9, alpha=0.025)
    assert low == pytest.approx(SLOW.value_at_rank(900 - half))
    assert high == (math.inf if 900 + half > 1000 else pytest.approx(SLOW.value_at_rank(900 + half)))
    slow = rule("latency", quantile=0.9, max_increase="10%")
    failed = check(slow, SLOW, PROD, min_requests=500)
    p_high = quantile_bounds(PROD, 0.9, alpha=0.025)[1]
    assert (failed.verdict == "fail") == (low > 1.1 * p_high)
    assert failed.limit == pytest.approx(1.1 * 0.325) and failed.p_value is None
    assert check(slow, PROD, PROD, min_requests=500).verdict == "pending"  # 1000 values cannot show +10%
    big = Distribution(BOUNDS, tuple(c * 1000 for c in PROD.cumulative))
    assert check(rule("latency", quantile=0.9, max_increase="50%"), big, big, min_requests=500).verdict == "pass"


def test_gauge_where_higher_is_better_fails_on_the_canarys_upper_bound() -> None:
    prod = Distribution.from_samples([0.80 + 0.0001 * i for i in range(2000)])
    worse = Distribution.from_samples([0.60 + 0.0001 * i for i in range(2000)])
    assert check(rule("gauge", max_decrease="5%"), worse, prod, min_requests=100).verdict == "fail"
    floor = check(rule("gauge", min=0.75), worse, prod, min_requests=100)
    assert (floor.verdict, floor.limit) == ("fail", 0.75)
    assert floor.reason.startswith("my_gauge p50 worse than min 0.75: upper bound")
    assert check(rule("gauge", min=0.65), worse, prod, min_requests=100).verdict == "pass"


def test_malformed_buckets_are_inconclusive() -> None:
    no_inf = Distribution((0.1, 0.2), (5, 10))
    assert check(rule("latency", max=1), no_inf, PROD, min_requests=1).reason == (
        "my_latency: canary buckets must ascend and end with +Inf"
    )
    uneven = Distribution((0.1, math.inf), (5,))
    assert check(rule("latency", max=1), PROD, uneven, min_requests=1).verdict == "inconclusive"


# --- pending, unavailable, decide ---------------------------------------------


def test_too_few_requests_is_pending_and_says_how_many() -> None:
    relative = rule(max_increase="10%")
    waiting = check(relative, Counts(5, 120), Counts(4, 800), min_requests=1000)
    assert (waiting.verdict, waiting.limit, waiting.p_value) == ("pending", None, None)
    assert waiting.reason == "my_rate: waiting for data: canary has 120 of 1000 requests, prod has 800 of 1000 requests"
    # An absolute rule needs no prod data.
    assert check(rule(max="5%"), Counts(5, 1000), Counts(0, 0), min_requests=1000).verdict == "pass"
    scores = check(rule("gauge", min=1), Distribution.from_samples([2.0] * 9), PROD, min_requests=10)
    assert scores.reason == "my_gauge: waiting for data: canary has 9 of 10 values"
    empty = Distribution.from_samples([])
    nothing = check(rule("latency", max=1), empty, empty, min_requests=0)
    assert (nothing.verdict, nothing.canary) == ("pending", None)
    assert nothing.reason == "my_latency: waiting for data: canary has 0 of 1 requests"


def test_unavailable_metrics_are_inconclusive_with_the_cause() -> None:
    gone = unavailable(rule("latency", max="1s"), "Prometheus answered 503")
    assert (gone.verdict, gone.metric, gone.kind, gone.canary) == ("inconclusive", "my_latency", "latency", None)
    assert gone.reason == "my_latency: metrics unavailable: Prometheus answered 503"


def test_decide_waits_for_the_minimum_duration_whatever_the_metrics_say() -> None:
    early = decide(
        [result("fail")], started_at=START, now=START + timedelta(minutes=12, seconds=30), min_duration=HOUR / 2
    )
    assert early.verdict == "pending"
    assert early.summary == "pending: 17m30s left of the 30m minimum duration (so far: fail)"
    on_time = decide([result("fail")], started_at=START, now=START + HOUR / 2, min_duration=HOUR / 2)
    assert on_time.verdict == "fail"
    assert on_time.summary == "fail: m 1.00% vs 1.00% (limit 1.10%), p=0.5"


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        (["pass", "pending", "inconclusive", "fail"], "fail"),
        (["pass", "pending", "inconclusive"], "inconclusive"),
        (["pass", "pending", "pass"], "pending"),
        (["pass", "pass"], "pass"),
    ],
)
def test_decide_takes_the_worst_metric(verdicts: list[Verdict], expected: Verdict) -> None:
    results = [result(v, metric=f"m{i}") for i, v in enumerate(verdicts)]
    decision = decide(results, started_at=START, now=START + 2 * HOUR, min_duration=HOUR)
    assert decision.verdict == expected
    assert decision.metrics == tuple(results)
    assert decision.summary.startswith(f"{expected}: ")


def test_decide_summaries() -> None:
    def later(*results: MetricResult) -> Decision:
        return decide(results, started_at=START, now=START + 2 * HOUR, min_duration=HOUR)

    assert later().summary == "inconclusive: no guardrails configured"
    assert later(result("pass", "a"), result("pass", "b")).summary == (
        "pass: all 2 guardrails hold: a 1.00% vs 1.00% (limit 1.10%), p=0.5; b 1.00% vs 1.00% (limit 1.10%), p=0.5"
    )
    gone = unavailable(rule(max="1%"), "timeout")
    assert later(result("pass"), gone).summary == "inconclusive: my_rate: metrics unavailable: timeout"


def test_as_record_is_compact_and_yaml_safe() -> None:
    failed = check(rule(max_increase="10%"), Counts(91, 10_000), Counts(300, 100_000), min_requests=1000)
    record = failed.as_record()
    assert record == {
        "metric": "my_rate",
        "kind": "rate",
        "verdict": "fail",
        "canary": 0.0091,
        "prod": 0.003,
        "limit": 0.0033,  # 1.1 * 0.003 = 0.0033000000000000004 before rounding
        "lower": float(f"{failed.lower:.4g}"),
        "upper": float(f"{failed.upper:.4g}"),
        "n_canary": 10_000,
        "n_prod": 100_000,
        "reason": failed.reason,
        "method": METHOD,
        "looks": 1,
    }
    assert failed.lower is not None and failed.lower > 0.1
    assert failed.reason.startswith("my_rate worse than +10% of prod: lower bound +")
    assert yaml.safe_load(yaml.safe_dump(record)) == record
    assert json.loads(json.dumps(record, allow_nan=False)) == record
    pending = check(rule("latency", max=1), Distribution.from_samples([]), PROD, min_requests=1).as_record()
    # Unset numbers are left out rather than written as null.
    assert set(pending) == {"metric", "kind", "verdict", "prod", "n_canary", "n_prod", "reason"}
    assert {type(v) for v in pending.values()} <= {str, int, float}


# --- properties ----------------------------------------------------------------


def binomials(seed: int, n: int, p: float, trials: int) -> list[int]:
    """``trials`` exact Binomial(n, p) draws, at C speed (numpy's).

    A normal approximation would be least exact in the tails with few errors, which is exactly what a false-fail
    rate measures.
    """
    return np.random.default_rng(seed).binomial(n, p, size=trials).tolist()


def histograms(seed: int, n: int, cdf: list[float], trials: int) -> list[Distribution]:
    """``trials`` histograms of ``n`` values drawn into buckets with these cumulative probabilities (multinomial)."""
    probs = np.diff(np.asarray(cdf), prepend=0.0).clip(0.0, 1.0)
    draws = np.random.default_rng(seed).multinomial(n, probs / probs.sum(), size=trials).cumsum(axis=1)
    return [Distribution(PROM_BOUNDS, tuple(map(float, row))) for row in draws.tolist()]


def false_fail_slack(alpha: float, trials: int) -> float:
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / trials)


CONFIDENCE = st.sampled_from([0.9, 0.95, 0.99])
ALLOWANCE = st.sampled_from(["0%", "10%"])


@settings(PROPERTY, max_examples=12)
@given(
    p=st.floats(0.002, 0.05),
    canary_errors=st.integers(10, 60),
    share=st.sampled_from([1, 3, 10]),
    allowance=ALLOWANCE,
    confidence=CONFIDENCE,
)
def test_identical_rates_fail_at_most_at_the_configured_rate(
    p: float, canary_errors: int, share: int, allowance: str, confidence: float
) -> None:
    # The Wald test is trusted from ~10 expected errors on the canary; below that, with no allowance,
    # its false-fail rate can run ~25% over alpha (that is what min_requests is for).
    n_canary = max(int(canary_errors / p), 100)
    n_prod = min(n_canary * share, int(300 / p))  # caps the simulation's cost
    guard, trials = rule(max_increase=allowance, confidence=confidence), 300
    canaries, prods = binomials(n_canary, n_canary, p, trials), binomials(n_canary + 1, n_prod, p, trials)
    fails = sum(
        check(guard, Counts(canary, n_canary), Counts(prod, n_prod), min_requests=100).verdict == "fail"
        for canary, prod in zip(canaries, prods, strict=True)
    )
    assert fails / trials <= false_fail_slack(guard.alpha, trials)


@settings(PROPERTY, max_examples=10)
@given(
    median=st.floats(0.02, 0.5),
    sigma=st.floats(0.3, 1.2),
    q=st.sampled_from([0.5, 0.9, 0.99]),
    n_canary=st.integers(100, 600),
    share=st.sampled_from([1, 3]),
    allowance=ALLOWANCE,
    confidence=CONFIDENCE,
)
def test_identical_latencies_fail_at_most_at_the_configured_rate(
    *, median: float, sigma: float, q: float, n_canary: int, share: int, allowance: str, confidence: float
) -> None:
    lognormal = NormalDist(math.log(median), sigma)
    cdf = [lognormal.cdf(math.log(b)) if math.isfinite(b) else 1.0 for b in PROM_BOUNDS]
    guard, trials = rule("latency", quantile=q, max_increase=allowance, confidence=confidence), 150
    canaries, prods = (
        histograms(n_canary, n_canary, cdf, trials),
        histograms(n_canary + 1, n_canary * share, cdf, trials),
    )
    fails = sum(
        check(guard, canary, prod, min_requests=100).verdict == "fail"
        for canary, prod in zip(canaries, prods, strict=True)
    )
    assert fails / trials <= false_fail_slack(guard.alpha, trials)


@settings(PROPERTY, max_examples=40)
@given(p=st.floats(0.001, 0.1), expected_errors=st.integers(150, 1000), share=st.integers(1, 20), confidence=CONFIDENCE)
def test_three_times_the_error_rate_fails(p: float, expected_errors: int, share: int, confidence: float) -> None:
    n = max(int(expected_errors / p), 100)  # "enough data": >= 150 errors expected at prod's rate (every look valid)
    canary, prod = Counts(round(3 * p * n), n), Counts(round(p * n * share), n * share)
    assert check(rule(max_increase="10%", confidence=confidence), canary, prod, min_requests=100).verdict == "fail"


STANDARD = NormalDist()  # one for every quantile the test below spreads (a million of them)


@lru_cache(maxsize=64)
def standard_spread(n: int) -> tuple[float, ...]:
    """The standard normal's quantiles at (i + 0.5) / n, i < n: its lower half, mirrored (the normal is symmetric)."""
    lower = [STANDARD.inv_cdf((i + 0.5) / n) for i in range(n // 2)]
    return (*lower, *([0.0] if n % 2 else []), *(-z for z in reversed(lower)))


@settings(PROPERTY, max_examples=40)
@given(
    sigma=st.floats(0.1, 1.0),
    q=st.sampled_from([0.5, 0.9, 0.99]),
    tail_values=st.integers(200, 400),
    share=st.integers(1, 5),
    confidence=CONFIDENCE,
)
def test_twice_the_latency_quantile_fails(
    sigma: float, q: float, tail_values: int, share: int, confidence: float
) -> None:
    # Evenly spread quantiles of a lognormal stand in for samples, so luck plays no part. "Enough data":
    # >= 200 values beyond the quantile and >= 3000 in all, which narrows the quantiles' log-scale
    # anytime-valid 99% intervals below log(2 / 1.1) for a spread (sigma) up to 1.
    def values(n: int, scale: float) -> Distribution:
        return Distribution.from_samples([scale * math.exp(sigma * z) for z in standard_spread(n)])

    n = max(math.ceil(tail_values / (1 - q)), 3000)
    slow = check(
        rule("latency", quantile=q, max_increase="10%", confidence=confidence),
        values(n, 0.2),
        values(n * share, 0.1),
        min_requests=100,
    )
    assert slow.verdict == "fail"
    assert slow.canary == pytest.approx(2 * (slow.prod or 0), rel=0.05)


RULES = st.sampled_from(
    [
        {"max_increase": "10%"},
        {"max_increase": "0%"},
        {"max": "2%"},
        {"max_decrease": "5%"},
        {"min": "10%"},
        {"max_increase": "20%", "min": "1%"},
    ]
)


COUNTS = st.integers(100, 4000).flatmap(lambda n: st.tuples(st.integers(0, min(n, 400)), st.just(n)))


def failing_counts(fails: Callable[[int], bool], top: int) -> list[int]:
    """The counts 0..top that fail, found as a run from either end by bisection (a drawn one is checked again)."""
    prefix = bisect_left(range(top + 1), True, key=lambda count: not fails(count)) if fails(0) else 0
    suffix = bisect_left(range(top + 1), True, key=fails) if fails(top) else top + 1
    return [*range(prefix), *range(max(suffix, prefix), top + 1)]


@settings(PROPERTY, max_examples=150)
@given(
    fields=RULES,
    n_canary=st.integers(100, 4000),
    prod=COUNTS,
    k=st.integers(2, 1000),
    confidence=CONFIDENCE,
    data=st.data(),
)
def test_more_rate_data_never_turns_a_fail_into_a_pass(
    *, fields: dict[str, str], n_canary: int, prod: tuple[int, int], k: int, confidence: float, data: st.DataObject
) -> None:
    # Failing examples drawn directly: the canary's errors (0 to 400, as COUNTS) among those failing against this prod.
    (pe, pn), guard = prod, rule(confidence=confidence, **fields)

    def fails(errors: int) -> bool:
        return check(guard, Counts(errors, n_canary), Counts(pe, pn), min_requests=100).verdict == "fail"

    failing = failing_counts(fails, min(n_canary, 400))
    assume(failing)
    ce = data.draw(st.sampled_from(failing), label="canary errors")
    assume(fails(ce))
    assert check(guard, Counts(k * ce, k * n_canary), Counts(k * pe, k * pn), min_requests=100).verdict == "fail"


QUANTILE_RULES = st.sampled_from(
    [{"max_increase": "10%"}, {"max_increase": "0%"}, {"max": "300ms"}, {"max_decrease": "5%"}, {"min": "50ms"}]
)
FEW_BOUNDS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, math.inf)
BUCKETS = st.lists(st.integers(0, 300), min_size=len(FEW_BOUNDS), max_size=len(FEW_BOUNDS))


@settings(PROPERTY, max_examples=80)
@given(
    fields=QUANTILE_RULES,
    q=st.sampled_from([0.5, 0.9, 0.99]),
    canary=BUCKETS,
    prod=BUCKETS,
    k=st.integers(2, 1000),
    confidence=CONFIDENCE,
)
def test_more_latency_data_never_turns_a_fail_into_a_pass(
    *, fields: dict[str, str], q: float, canary: list[int], prod: list[int], k: int, confidence: float
) -> None:
    def scaled(counts: list[int], by: int) -> Distribution:
        running = [0]
        for count in counts:
            running.append(running[-1] + by * count)
        return Distribution(FEW_BOUNDS, tuple(float(c) for c in running[1:]))

    guard = rule("latency", quantile=q, confidence=confidence, **fields)

    def fails(counts: list[int]) -> bool:
        return check(guard, scaled(counts, 20), scaled(prod, 20), min_requests=100).verdict == "fail"

    # Failing examples found from the drawn canary: itself if it fails (as every one drawn before), else its counts
    # moved the fewest buckets up or down that fails (~4 in 5 drawn canaries do not fail, and were drawn again).
    failing = next((moved for by in SHIFTS if fails(moved := shifted(canary, by))), None)
    assume(failing is not None)
    assert check(guard, scaled(failing, 20 * k), scaled(prod, 20 * k), min_requests=100).verdict == "fail"


SHIFTS = (0, *(by for step in range(1, len(FEW_BOUNDS)) for by in (step, -step)))


def shifted(counts: list[int], by: int) -> list[int]:
    """``counts`` moved ``by`` buckets up (down if negative), what would leave an end kept in the end bucket."""
    moved = [0] * len(counts)
    for at, count in enumerate(counts):
        moved[min(max(at + by, 0), len(counts) - 1)] += count
    return moved


def test_the_simulators_draw_from_the_distribution_they_are_given() -> None:
    # The simulators are part of the claim: a biased one could make the false-fail tests pass vacuously.
    assert sum(binomials(3, 1000, 0.02, 2000)) / 2000 == pytest.approx(20, rel=0.03)
    assert sum(binomials(4, 100, 0.9, 2000)) / 2000 == pytest.approx(90, rel=0.01)
    lognormal = NormalDist(math.log(0.1), 0.8)
    cdf = [lognormal.cdf(math.log(b)) if math.isfinite(b) else 1.0 for b in PROM_BOUNDS]
    draws = [h.cumulative for h in histograms(5, 300, cdf, 500)]
    assert [sum(column) / 500 / 300 for column in zip(*draws, strict=True)] == pytest.approx(cdf, abs=0.01)
