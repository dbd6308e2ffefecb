"""The canary's error rates over a whole canary checked again and again (simulated), and its boundary's validity.

Each simulation draws 2,000 canaries (seeded, exact binomial or multinomial draws, vectorised
over the runs) and decides each every 5,000 requests per arm for 100 looks, stopping at its first
final verdict as ``canary.yml`` does. A look decides all 2,000 runs at once through the evidence
:func:`regops.canary.check` decides on (:func:`regops.canary.rate_evidence`,
:func:`regops.canary.quantile_evidence`, over numpy arrays); tests below show both decide each canary alike. The bars are the issue's:
P(false fail) ≤ alpha + 1 % at the allowance's edge, P(pass) ≤ alpha + 1 % at twice the
allowance, and a canary equal to prod passing in ≥ 95 % of runs within the sample
:func:`regops.canary.plan` predicts.
"""

from __future__ import annotations

import functools
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from regops.canary import (
    Counts,
    Distribution,
    Rule,
    Verdict,
    boundary,
    check,
    plan,
    quantile_evidence,
    rate_evidence,
)
from regops.cli import main
from regops.confidence import Buckets


class _Numpy:
    """numpy, imported at the first name read from it: every xdist worker collects this file (numpy costs ~0.2 s CPU
    to import), one or two run its tests. numpy's names start with a letter; pytest's collection probes each
    module-level object for others (``_mock_name``, ``__wrapped__``…), which must not import it."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        import numpy

        return getattr(numpy, name)


np = _Numpy()

RUNS, LOOKS, STEP = 2000, 100, 5000
ALPHA = 0.05
BAR = ALPHA + 0.01


def rule(kind: str, **fields: str) -> Rule:
    return Rule.from_config({"metric": f"my_{kind}", "kind": kind, **fields}, confidence=1 - ALPHA)


def first_verdicts(shown: Callable[[int, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> list[tuple[Verdict, int]]:
    """Per run, (the first final verdict or "pending", the look it came at): looks stop at a pass or a fail.

    Each look decides every run still pending at once: ``shown(look, runs)`` says, per run of ``runs`` (their
    indices), whether the bounds show the canary worse (a fail) or within the allowance (a pass), by the evidence
    ``check`` itself decides on. A decided run is looked at no more, so it is not computed."""
    verdicts = np.full(RUNS, "pending", dtype=object)
    looks = np.full(RUNS, LOOKS)
    for look in range(LOOKS):
        pending = np.flatnonzero(verdicts == "pending")
        if not pending.size:
            break
        worse, within = shown(look, pending)
        for verdict, now in (("fail", worse), ("pass", within & ~worse)):
            verdicts[pending[now]], looks[pending[now]] = verdict, look + 1
    return list(zip(verdicts.tolist(), looks.tolist(), strict=True))


def share(outcomes: list[tuple[Verdict, int]], verdict: Verdict, *, within: int = LOOKS) -> float:
    return sum(1 for v, look in outcomes if v == verdict and look <= within) / len(outcomes)


def rate_shown(r: Rule, canary: tuple[np.ndarray, int], prod: tuple[np.ndarray, int]) -> tuple[np.ndarray, np.ndarray]:
    """Per run, (shown worse, shown within) of a one-part rate rule: ``check``'s own evidence, over arrays."""
    assert canary[1] >= 1000 and prod[1] >= 1000  # past min_requests: check decides on the bounds alone
    ((_, worse, within),) = rate_evidence(r, canary, prod, sqrt=np.sqrt)
    return np.asarray(worse), np.asarray(within)


# --- the boundary against its closed forms and a simulated random walk -----------------------------------


def two_sided(t: float, alpha: float, rho: float) -> float:
    """Howard et al. 2021, eq. (3.7): the two-sided normal-mixture boundary, in closed form."""
    return math.sqrt((t + rho) * math.log((t + rho) / (rho * alpha**2)))


@pytest.mark.parametrize("t", [10.0, 1e3, 1e5, 1e7])
def test_the_one_sided_boundary_lies_between_the_two_sided_ones_at_alpha_and_twice_alpha(t: float) -> None:
    # The one-sided mixture martingale is the two-sided one times 2Φ(·) ∈ [1, 2]: its root lies between theirs.
    rho = 1e5 / (2 * math.log(1 / ALPHA) + math.log(1 + 2 * math.log(1 / ALPHA)))
    u = boundary(t, ALPHA)
    assert two_sided(t, 2 * ALPHA, rho) <= u <= two_sided(t, ALPHA, rho)
    if t >= 1e5:  # far from 0, Φ ≈ 1: the one-sided boundary is the two-sided one at 2 alpha
        assert u == pytest.approx(two_sided(t, 2 * ALPHA, rho), rel=1e-3)


def test_a_gaussian_random_walk_crosses_the_boundary_in_at_most_alpha_of_runs_however_often_it_is_looked_at() -> None:
    rng = np.random.default_rng(7)
    steps = np.arange(1, 20_001)
    limits = np.array([boundary(float(t), ALPHA, 2000.0) for t in steps])
    fixed = 1.645 * np.sqrt(steps)  # a fixed-sample bound
    crossings = []  # per walk: (crossed the boundary, crossed the fixed bound)
    for _ in range(20):  # 2,000 walks, 100 at a time: the same draws as all at once, in a twentieth of the memory
        walks = np.cumsum(rng.standard_normal((100, steps.size)), axis=1)
        crossings.append(np.stack([(walks >= limits).any(axis=1), (walks >= fixed).any(axis=1)], axis=1))
    crossed, crossed_fixed = np.concatenate(crossings).mean(axis=0)
    assert crossed <= ALPHA
    # A fixed-sample bound looked at every step crosses far more often: the looks are what the boundary pays for.
    assert crossed_fixed > 3 * ALPHA


# --- a rate guardrail --------------------------------------------------------


PROD_RATE = 0.01
RATE_RULE = {"max_increase": "20%"}


def rate_canaries(canary_rate: float, seed: int) -> list[tuple[Verdict, int]]:
    rng = np.random.default_rng(seed)
    errors = [np.cumsum(rng.binomial(STEP, p, size=(RUNS, LOOKS)), axis=1) for p in (canary_rate, PROD_RATE)]
    r = rule("rate", **RATE_RULE)

    def shown(look: int, runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = STEP * (look + 1)
        return rate_shown(r, (errors[0][runs, look], n), (errors[1][runs, look], n))

    return first_verdicts(shown)


@pytest.mark.parametrize(
    "fields", [{"max_increase": "20%"}, {"max_decrease": "20%"}, {"max": "1.2%"}, {"min": "0.8%"}], ids=str
)
def test_the_simulations_decide_each_canary_as_check_does(fields: dict[str, str]) -> None:
    rng = np.random.default_rng(11)
    r, n = rule("rate", **fields), int(rng.integers(1000, 500_000))
    canary, prod = rng.binomial(n, rng.uniform(0.005, 0.015, 500)), rng.binomial(n, 0.01, 500)
    worse, within = rate_shown(r, (canary, n), (prod, n))
    at_once = np.where(worse, "fail", np.where(within, "pass", "pending"))
    one_by_one = [
        check(r, Counts(int(c), n), Counts(int(p), n), min_requests=1000).verdict
        for c, p in zip(canary, prod, strict=True)
    ]
    assert at_once.tolist() == one_by_one
    assert {"pass", "fail", "pending"} <= set(one_by_one)  # the random inputs reach every verdict


def test_rate_canary_at_the_allowance_edge_fails_in_at_most_alpha_plus_1_percent_over_100_looks() -> None:
    outcomes = rate_canaries(PROD_RATE * 1.2, seed=1)
    assert share(outcomes, "fail") <= BAR


def test_rate_canary_at_twice_the_allowance_passes_in_at_most_alpha_plus_1_percent_at_any_look() -> None:
    outcomes = rate_canaries(PROD_RATE * 1.4, seed=2)
    assert share(outcomes, "pass") <= BAR
    assert share(outcomes, "fail") > 0.5  # and it is mostly caught, within the 500,000 requests


def test_rate_canary_equal_to_prod_passes_in_95_percent_of_runs_within_the_planned_sample() -> None:
    predicted = plan(rule("rate", **RATE_RULE), baseline=PROD_RATE).pass_equal
    assert predicted <= LOOKS * STEP
    outcomes = rate_canaries(PROD_RATE, seed=3)
    assert share(outcomes, "pass", within=predicted // STEP) >= 0.95
    assert share(outcomes, "fail") <= ALPHA


# --- a latency quantile guardrail --------------------------------------------

# Prod's latency: log-normal (median 1 s, sigma 0.5) between the knots, linear in between, so that Prometheus'
# interpolation within a bucket is exact; the buckets hold the knots of prod and of each scaled canary.
SCALES = (1.0, 1.2, 1.4)


@functools.cache
def knots() -> np.ndarray:
    return np.exp(np.arange(np.log(2.2), np.log(6.5), 0.1))


@functools.cache
def bucket_bounds() -> np.ndarray:
    return np.unique(np.round(np.concatenate([knots() * s for s in SCALES]), 9))


Q = 0.99


def prod_cdf(x: np.ndarray) -> np.ndarray:
    from statistics import NormalDist

    points = knots()
    at_knots = np.array([NormalDist().cdf(math.log(k) / 0.5) for k in points])
    inside = np.interp(x, points, at_knots, left=0.0, right=at_knots[-1])
    below = x < points[0]
    return np.where(below, at_knots[0] * x / points[0], inside)


def latency_canaries(scale: float, seed: int) -> list[tuple[Verdict, int]]:
    """Per run, the first verdict of a latency canary at ``scale`` times prod's latency (:func:`first_verdicts`).

    A run's counts are the sum of independent draws per look, so drawing a look's requests only for the runs still
    pending gives the same distribution as drawing all 100 looks up front: a decided run's are never drawn."""
    rng = np.random.default_rng(seed)
    bounds = (*(float(b) for b in bucket_bounds()), math.inf)
    probs = [np.diff(np.concatenate([[0.0], prod_cdf(bucket_bounds() / s), [1.0]])) for s in (scale, 1.0)]
    totals = [np.zeros((RUNS, bucket_bounds().size + 1), dtype=np.int64) for _ in probs]  # per run, per bucket, so far
    r = rule("latency", max_increase="20%")

    def shown(look: int, runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        for arm, p in zip(totals, probs, strict=True):
            arm[runs] += rng.multinomial(STEP, p, size=runs.size)
        n = STEP * (look + 1)
        return latency_shown(r, *((bounds, list(np.cumsum(arm[runs], axis=1).T), n) for arm in totals))

    return first_verdicts(shown)


def latency_shown(r: Rule, canary: Buckets, prod: Buckets) -> tuple[np.ndarray, np.ndarray]:
    """Per run, (shown worse, shown within) of a one-part quantile rule: ``check``'s own evidence, over arrays."""
    assert canary[2] >= 1000 and prod[2] >= 1000  # past min_requests: check decides on the bounds alone
    (part,) = quantile_evidence(r, canary, prod, where=np.where)
    return np.asarray(part.worse), np.asarray(part.within)


@pytest.mark.parametrize(
    "fields", [{"max_increase": "20%"}, {"max_decrease": "20%"}, {"max": "2.9"}, {"min": "2.3"}], ids=str
)
def test_the_latency_simulations_decide_each_canary_as_check_does(fields: dict[str, str]) -> None:
    rng = np.random.default_rng(12)
    r, n, bounds = (
        rule("latency", **fields),
        int(rng.integers(1000, 50_000)),
        (*(float(b) for b in bucket_bounds()), math.inf),
    )
    arms = []
    for scale in rng.uniform(0.5, 1.5, 300), np.ones(300):
        probs = np.diff(
            np.concatenate([np.zeros((300, 1)), prod_cdf(bucket_bounds() / scale[:, None]), np.ones((300, 1))], axis=1)
        )
        arms.append(np.cumsum([rng.multinomial(n, p) for p in probs], axis=1))
    worse, within = latency_shown(r, *((bounds, list(arm.T), n) for arm in arms))
    at_once = np.where(worse, "fail", np.where(within, "pass", "pending"))
    pairs = zip(*(arm.tolist() for arm in arms), strict=True)
    one_by_one = [
        check(r, Distribution(bounds, tuple(c)), Distribution(bounds, tuple(p)), min_requests=1000).verdict
        for c, p in pairs
    ]
    assert at_once.tolist() == one_by_one
    assert {"pass", "fail", "pending"} <= set(one_by_one)  # the random inputs reach every verdict


def share_above_quantile_within_allowance() -> float:
    """The share of prod's values between its p99 and p99 +20 %: what ``canary plan`` takes as the baseline."""
    grid = np.linspace(knots()[0], knots()[-1], 200_001)
    p99 = float(grid[np.searchsorted(prod_cdf(grid), Q)])
    return float(prod_cdf(np.array([1.2 * p99]))[0]) - Q


def test_latency_canary_at_the_allowance_edge_fails_in_at_most_alpha_plus_1_percent_over_100_looks() -> None:
    assert share(latency_canaries(1.2, seed=4), "fail") <= BAR


def test_latency_canary_at_twice_the_allowance_passes_in_at_most_alpha_plus_1_percent_at_any_look() -> None:
    outcomes = latency_canaries(1.4, seed=5)
    assert share(outcomes, "pass") <= BAR
    assert share(outcomes, "fail") > 0.5


def test_latency_canary_equal_to_prod_passes_in_95_percent_of_runs_within_the_planned_sample() -> None:
    predicted = plan(rule("latency", max_increase="20%"), baseline=share_above_quantile_within_allowance()).pass_equal
    assert predicted <= LOOKS * STEP
    outcomes = latency_canaries(1.0, seed=6)
    assert share(outcomes, "pass", within=predicted // STEP) >= 0.95
    assert share(outcomes, "fail") <= ALPHA


# --- regops canary plan ------------------------------------------------------


@pytest.fixture
def example(tmp_path: Path) -> Path:
    root = Path(__file__).resolve().parents[1]
    for folder in ("registry", "examples", "schemas"):
        shutil.copytree(root / folder, tmp_path / folder)
    return tmp_path / "registry"


def test_canary_plan_prints_the_planned_requests_and_hours_for_each_guardrail_with_a_baseline(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = example / "regops.yaml"
    config.write_text(
        config.read_text().replace("      max_increase: 10%\n", "      max_increase: 10%\n      baseline: 0.4%\n")
    )
    before = {p: p.read_bytes() for p in example.rglob("*.yaml")}
    assert main(["canary", "plan", "sentiment", "--registry", str(example), "--traffic-per-hour", "200000"]) == 0
    out = capsys.readouterr().out
    expected = plan(rule("rate", max_increase="10%"), baseline=0.004, canary_per_hour=200_000 * 0.05)
    assert f"{expected.pass_equal:,} requests per arm, {expected.hours_equal:.3g} h" in out, out
    assert f"{expected.fail_twice:,} requests per arm" in out
    assert 1_000_000 < expected.pass_equal < 1_500_000  # 0.4 %, +10 %: over a million requests per arm
    assert "latency_p99: no baseline to size for: set `baseline:` on the guardrail" in out
    assert {p: p.read_bytes() for p in example.rglob("*.yaml")} == before  # planning changes nothing


def test_an_undecided_canary_at_max_requests_is_inconclusive_and_says_how_many_requests_a_decision_needs() -> None:
    r = rule("rate", max_increase="10%")
    canary, prod = Counts(2_020, 500_000), Counts(2_000, 500_000)
    assert check(r, canary, prod, min_requests=1000, max_requests=1_000_000).verdict == "pending"
    capped = check(r, canary, prod, min_requests=1000, max_requests=500_000)
    assert capped.verdict == "inconclusive"
    assert capped.reason.startswith("no decision within max_requests 500000: my_rate not yet shown within +10% of prod")
    assert "requests per arm at these rates" in capped.reason
    assert capped.lower is not None and capped.upper is not None and capped.lower < 0.1 < capped.upper


def test_validate_warns_when_the_declared_traffic_cannot_reach_a_decision_within_max_duration(
    example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = example / "regops.yaml"
    text = config.read_text().replace("      max_increase: 10%\n", "      max_increase: 10%\n      baseline: 0.4%\n")
    slow = text.replace("canary:\n", "canary:\n  traffic_per_hour: 20000\n  max_duration_minutes: 1440\n", 1)
    config.write_text(slow)
    before = {p: p.read_bytes() for p in example.rglob("*.yaml")}
    needs = plan(rule("rate", max_increase="10%"), baseline=0.004, canary_per_hour=20_000 * 0.05)
    assert main(["validate", "--registry", str(example)]) == 0  # a warning fails nothing
    out = capsys.readouterr().out
    hours = max(needs.hours_equal or 0, needs.hours_twice or 0)
    models = sorted(p.name for p in (example / "models").iterdir())
    for model in models:  # every model takes regops.yaml's canary
        line = next(line for line in out.splitlines() if line.startswith(f"registry/models/{model}/model.yaml:"))
        assert ": warning: canary: error_rate +10%: " in line, out
    assert f"a decision takes about {hours:,.1f} h at the declared traffic" in out, out
    assert "longer than max_duration (24.0 h): the canary would end inconclusive" in out
    assert out.rstrip().endswith(f"ok: no problems ({len(models)} warnings)")
    assert main(["validate", "--registry", str(example), "--format", "github"]) == 0
    assert "::warning file=" in capsys.readouterr().out
    assert {p: p.read_bytes() for p in example.rglob("*.yaml")} == before

    config.write_text(
        text.replace("canary:\n", "canary:\n  traffic_per_hour: 5000000\n  max_duration_minutes: 1440\n", 1)
    )
    assert main(["validate", "--registry", str(example)]) == 0
    assert "warning" not in capsys.readouterr().out  # enough traffic: a decision within a day
