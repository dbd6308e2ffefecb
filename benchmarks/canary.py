"""How often a canary passes, by requests per arm and how much worse it is: the fixed-sample test regops used
before the anytime-valid canary, beside the confidence sequence it uses now; then the expected sample to a decision.

Prod's error rate 0.4 %, guardrail ``max_increase: 10%``, confidence 0.95, 2,000 binomial draws per cell
(seeded), as in issue #13. Run: ``python benchmarks/canary.py`` (numpy needed: the test extra).
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

from regops.canary import Counts, Rule, check

PROD, ALLOWANCE, ALPHA, DRAWS = 0.004, 0.10, 0.05, 2000
SIZES = (1_000, 5_000, 20_000)
TIMES = (1.0, 1.5, 2.0, 3.0)
RULE = Rule.from_config({"metric": "error_rate", "kind": "rate", "max_increase": "10%"}, confidence=1 - ALPHA)


def fixed_sample_pass(canary: Counts, prod: Counts) -> bool:
    """The test regops ran before: a one-sided Wald z test of canary > 1.1 x prod; "pass" = not shown worse."""
    p_c, p_p, f = canary.rate, prod.rate, 1 + ALLOWANCE
    variance = p_c * (1 - p_c) / canary.requests + f**2 * p_p * (1 - p_p) / prod.requests
    if variance <= 0:
        return p_c <= f * p_p
    return (p_c - f * p_p) / math.sqrt(variance) < NormalDist().inv_cdf(1 - ALPHA)


def table(rng: np.random.Generator) -> None:
    print("| requests per arm | " + " | ".join(f"canary {t:g}x prod: fixed / sequential" for t in TIMES) + " |")
    print("|---|" + "---|" * len(TIMES))
    for n in SIZES:
        cells = []
        for times in TIMES:
            errors = rng.binomial(n, [PROD * times, PROD], size=(DRAWS, 2))
            pairs = [(Counts(int(c), n), Counts(int(p), n)) for c, p in errors]
            fixed = sum(fixed_sample_pass(c, p) for c, p in pairs) / DRAWS
            sequential = sum(check(RULE, c, p, min_requests=1000).verdict == "pass" for c, p in pairs) / DRAWS
            cells.append(f"pass {fixed:.0%} / pass {sequential:.0%}")
        print(f"| {n:,} | " + " | ".join(cells) + " |")


def expected_sample(rng: np.random.Generator, times: float, *, runs: int, step: int, looks: int) -> tuple[float, float]:
    """Mean requests per arm to the first pass or fail (checked every ``step``; undecided counts as the cap) and
    the share decided."""
    errors = np.cumsum(rng.binomial(step, [PROD * times, PROD], size=(runs, looks, 2)), axis=1)
    stops, decided = [], 0
    for run in range(runs):
        for look in range(looks):
            n = step * (look + 1)
            c, p = (Counts(int(e), n) for e in errors[run, look])
            if check(RULE, c, p, min_requests=1000).verdict in ("pass", "fail"):
                decided += 1
                break
        stops.append(n)
    return float(np.mean(stops)), decided / runs


def fixed_design(times: float) -> int:
    """The sample a fixed-sample non-inferiority test needs for 95 % power at the same alpha (one look)."""
    f, p_c = 1 + ALLOWANCE, PROD * times
    sd = math.sqrt(p_c * (1 - p_c) + f**2 * PROD * (1 - PROD))
    z = NormalDist().inv_cdf(1 - ALPHA) + NormalDist().inv_cdf(0.95)
    return math.ceil((z * sd / abs(p_c - f * PROD)) ** 2)


def main() -> None:
    rng = np.random.default_rng(13)
    print(f"prod error rate {PROD:.1%}, max_increase {ALLOWANCE:.0%}, confidence {1 - ALPHA:g}, {DRAWS} draws\n")
    table(rng)
    print("\nexpected requests per arm to a decision (checked every 20,000, at most 2,000,000; 300 runs):\n")
    print("| canary | sequential (decided) | fixed-sample design, 95 % power | ratio |")
    print("|---|---|---|---|")
    for times in (1.0, 2.0, 3.0):
        mean, decided = expected_sample(rng, times, runs=300, step=20_000, looks=100)
        fixed = fixed_design(times)
        print(f"| {times:g}x prod | {mean:,.0f} ({decided:.0%}) | {fixed:,} | {mean / fixed:.2f} |")


if __name__ == "__main__":
    main()
