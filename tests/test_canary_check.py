"""``regops canary check`` end to end, short of the workflow: live metrics in, the verdict in the version file out.

The scenarios of the canary issue run against a real Prometheus (tests/servers/prometheus.py backfills the traffic
with promtool and serves it), the ``json`` provider against a file and a local HTTP server, and the pull requests
against the local GitHub. sentiment 1.0.0 serves prod; 1.1.0 is promoted to staging by alice, and its canary is
moved two hours into the past (the version file's own timestamps), so that the traffic of the last two hours is its.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from regops.cli import main
from tests.conftest import commit, git, run_regops
from tests.servers.github_fixtures import GitHubFixture
from tests.servers.prometheus import LATENCY_GUARDRAIL, RATE_GUARDRAIL, Arm, StartPrometheus, traffic_openmetrics
from tests.test_github import REPO, with_origin

REF = "sentiment@1.1.0"
VERSION_FILE = Path("registry/models/sentiment/1.1.0.yaml")
# Two hours ago on the minute: the canary's start, and the start of the made-up traffic.
START = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
END = START + timedelta(minutes=60)
NOW = END.strftime("%Y-%m-%dT%H:%M:%SZ")

LATENCY_PROD = {0.1: 108_000, 0.25: 113_500}  # p99 between 0.1 and 0.25 s
HEALTHY = (
    Arm("1.0.0", requests=114_000, errors=570, latency=LATENCY_PROD),
    Arm("1.1.0", requests=6_000, errors=3, latency={0.1: 5_690, 0.25: 5_975}),
)
ERRORS_3X = (HEALTHY[0], Arm("1.1.0", requests=6_000, errors=90, latency={0.1: 5_690, 0.25: 5_975}))
SLIGHTLY_WORSE = (HEALTHY[0], Arm("1.1.0", requests=6_000, errors=33, latency={0.1: 5_680, 0.25: 5_974}))
TOO_LITTLE = (HEALTHY[0], Arm("1.1.0", requests=400, errors=2, latency={0.1: 380, 0.25: 398}))
# The canary's error counter was never created (a counter appears at its first increment, or never).
NO_ERROR_SERIES = (HEALTHY[0], Arm("1.1.0", requests=6_000, errors=None, latency={0.1: 5_690, 0.25: 5_975}))


def canary_config(metrics: str, *, min_duration: int = 30) -> str:
    """regops.yaml's canary section: an error-rate and a p99-latency guardrail, at least 1000 requests per arm."""
    rails = [
        {**RATE_GUARDRAIL, "max_increase": "10%"},
        {**LATENCY_GUARDRAIL, "quantile": 0.99, "max_increase": "20%", "max": "250ms"},
    ]
    return (
        f"canary:\n  min_requests: 1000\n  min_duration_minutes: {min_duration}\n  metrics: {metrics}\n"
        f"  guardrails:\n" + "".join(f"    - {json.dumps(rail)}\n" for rail in rails)
    )


def stage_canary(repo: Path, capsys: pytest.CaptureFixture[str], metrics: str, **config: Any) -> None:
    """Configure the canary, promote 1.1.0 to staging as alice, and move the canary's start to START."""
    with (repo / "registry/regops.yaml").open("a") as handle:
        handle.write(canary_config(metrics, **config))
    commit(repo, "canary guardrails")
    run_regops(capsys, repo, "promote", REF, "--to", "staging", "--notes", "canary", "--by", "alice")
    text = (repo / VERSION_FILE).read_text()
    moved = re.sub(r"started_at: [0-9TZ:.+-]+", f"started_at: {START:%Y-%m-%dT%H:%M:%SZ}", text)
    assert moved != text
    (repo / VERSION_FILE).write_text(moved)
    commit(repo, "the canary started two hours ago")


def canary(repo: Path) -> dict[str, Any]:
    return yaml.safe_load((repo / VERSION_FILE).read_text())["canary"]  # type: ignore[no-any-return]


def check(capsys: pytest.CaptureFixture[str], *args: str, code: int = 0) -> str:
    got = main(["canary", "check", "--now", NOW, *args])
    out, err = capsys.readouterr()
    assert got == code, out + err
    return out + err


def check_and_pr(capsys: pytest.CaptureFixture[str], *, code: int = 0) -> str:
    """What canary.yml runs: the check (metrics token; exits ``code``), then the PR step (GitHub token; exits 0)."""
    check(capsys, code=code)
    got = main(["canary", "pr"])
    out, err = capsys.readouterr()
    assert got == 0, out + err
    return out + err


def serving_canary(capsys: pytest.CaptureFixture[str]) -> str | None:
    """The canary version the serving manifest sends traffic to."""
    capsys.readouterr()
    assert main(["serving", "export"]) == 0
    canary = json.loads(capsys.readouterr().out)["models"]["sentiment"]["canary"]
    return canary["version"] if canary else None


@pytest.fixture
def on_prometheus(prometheus: StartPrometheus) -> Any:
    """Stage the canary against a Prometheus serving ``arms`` (or against a closed port: ``arms`` None)."""

    def stage(repo: Path, capsys: pytest.CaptureFixture[str], arms: tuple[Arm, ...] | None, **config: Any) -> None:
        url = prometheus(traffic_openmetrics(*arms, start=START)) if arms else "http://127.0.0.1:9"
        stage_canary(repo, capsys, f"{{provider: prometheus, url: {json.dumps(url)}}}", **config)

    return stage


def test_a_clearly_healthy_canary_passes_and_the_version_file_records_the_numbers(
    history_repo: Path, on_prometheus: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    on_prometheus(history_repo, capsys, HEALTHY)
    out = check(capsys)
    assert f"{REF} (canary) vs prod 1.0.0: pass" in out, out
    recorded = canary(history_repo)
    assert recorded["result"] == "passed"
    assert recorded["checked_at"] == datetime.fromisoformat(NOW)
    by_metric = {m["metric"]: m for m in recorded["report"]}
    assert by_metric["error_rate"]["verdict"] == "pass"
    assert (by_metric["error_rate"]["n_canary"], by_metric["error_rate"]["n_prod"]) == (6_000, 114_000)
    assert by_metric["error_rate"]["canary"] == pytest.approx(0.0005) and by_metric["error_rate"]["prod"] == 0.005
    # The evidence: the bounds of the canary's excess over prod at the decision, the method, the look.
    assert (
        by_metric["error_rate"]["upper"] <= 0.10 and by_metric["error_rate"]["lower"] < by_metric["error_rate"]["upper"]
    )
    assert by_metric["error_rate"]["method"].startswith("normal-mixture confidence sequence")
    assert by_metric["error_rate"]["looks"] == 1
    assert by_metric["latency"]["verdict"] == "pass"
    # An edit the base-branch rules allow (a bot may commit it straight to main).
    commit(history_repo, "canary: sentiment@1.1.0 passed")
    assert main(["validate", "--base", "HEAD^"]) == 0, capsys.readouterr().out
    # A passed canary keeps its traffic until its prod promotion merges.
    assert serving_canary(capsys) == "1.1.0"


def test_a_canary_with_three_times_the_error_rate_fails_and_its_traffic_stops(
    history_repo: Path, on_prometheus: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    on_prometheus(history_repo, capsys, ERRORS_3X)
    out = check(capsys, code=1)
    assert f"{REF} (canary) vs prod 1.0.0: fail" in out, out
    assert re.search(r"error_rate +rate +fail +1\.50% +0\.50%", out), out
    assert canary(history_repo)["result"] == "failed"
    assert main(["validate"]) == 0, capsys.readouterr().out
    assert serving_canary(capsys) is None, "a failed canary takes no more traffic, before its rollback merges"


def test_a_small_difference_not_shown_within_the_allowance_is_pending_not_a_pass(
    history_repo: Path, on_prometheus: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    on_prometheus(history_repo, capsys, SLIGHTLY_WORSE)
    out = check(capsys)
    assert f"{REF} (canary) vs prod 1.0.0: pending" in out, out
    assert canary(history_repo)["result"] == "pending"
    [rate] = [m for m in canary(history_repo)["report"] if m["metric"] == "error_rate"]
    assert rate["canary"] > rate["prod"], "worse, but not shown worse than allowed either"
    assert rate["verdict"] == "pending" and rate["lower"] < 0.10 < rate["upper"]
    assert "not yet shown within +10% of prod or worse" in rate["reason"]


def test_each_check_counts_its_look_and_an_undecided_canary_ends_inconclusive_at_max_duration(
    history_repo: Path, on_prometheus: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    on_prometheus(history_repo, capsys, SLIGHTLY_WORSE)
    check(capsys)
    check(capsys)
    assert {m["metric"]: m["looks"] for m in canary(history_repo)["report"]} == {"error_rate": 2, "latency": 2}
    config = history_repo / "registry/regops.yaml"
    config.write_text(config.read_text().replace("canary:\n", "canary:\n  max_duration_minutes: 40\n", 1))
    out = check(capsys, code=1)
    assert f"{REF} (canary) vs prod 1.0.0: inconclusive" in out, out
    assert "no decision within the 40m maximum duration" in out
    assert canary(history_repo)["result"] == "inconclusive"


def test_too_little_traffic_is_pending(
    history_repo: Path, on_prometheus: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    on_prometheus(history_repo, capsys, TOO_LITTLE)
    out = check(capsys)
    assert f"{REF} (canary) vs prod 1.0.0: pending" in out, out
    assert "400" in out and "1000" in out, "says how many requests it has and needs"
    assert canary(history_repo)["result"] == "pending"


def test_before_the_minimum_duration_it_is_pending_whatever_the_numbers(
    history_repo: Path, on_prometheus: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    on_prometheus(history_repo, capsys, ERRORS_3X, min_duration=24 * 60)
    out = check(capsys)
    assert "pending" in out.splitlines()[0], out
    assert canary(history_repo)["result"] == "pending"


def test_a_missing_series_is_inconclusive(
    history_repo: Path, on_prometheus: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    on_prometheus(history_repo, capsys, NO_ERROR_SERIES)
    out = check(capsys, code=1)
    assert f"{REF} (canary) vs prod 1.0.0: inconclusive" in out, out
    assert "no series" in out and "or vector(0)" in out, "says how to write the query"
    assert canary(history_repo)["result"] == "inconclusive"


def test_prometheus_down_is_inconclusive_and_nothing_is_written_as_a_pass(
    history_repo: Path, on_prometheus: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    on_prometheus(history_repo, capsys, None)
    out = check(capsys, code=1)
    assert f"{REF} (canary) vs prod 1.0.0: inconclusive" in out, out
    assert "cannot reach" in out
    recorded = canary(history_repo)
    assert recorded["result"] == "inconclusive"
    assert {m["verdict"] for m in recorded["report"]} == {"inconclusive"}


# --- the json provider, --dry-run, formats, configuration errors -----------------------------------


def metrics_document(canary_errors: int) -> dict[str, Any]:
    """Per-version counts and cumulative latency buckets, as a serving stack without Prometheus would publish them."""
    prod_buckets = {"0.1": 361_000, "0.25": 379_810, "+Inf": 380_000}
    canary_buckets = {"0.1": 19_000, "0.25": 19_990, "+Inf": 20_000}
    return {
        "models": {
            "sentiment": {
                "1.0.0": {"error_rate": {"errors": 380, "requests": 380_000}, "latency": {"buckets": prod_buckets}},
                "1.1.0": {
                    "error_rate": {"errors": canary_errors, "requests": 20_000},
                    "latency": {"buckets": canary_buckets},
                },
            }
        }
    }


def test_the_json_provider_reads_a_file_and_dry_run_records_nothing(
    history_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stage_canary(history_repo, capsys, "{provider: json, path: metrics.json}")
    (history_repo / "metrics.json").write_text(json.dumps(metrics_document(canary_errors=60)))
    before = (history_repo / VERSION_FILE).read_bytes()
    out = check(capsys, "--dry-run", code=1)
    assert f"{REF} (canary) vs prod 1.0.0: fail" in out, out
    assert (history_repo / VERSION_FILE).read_bytes() == before
    markdown = check(capsys, "--format", "markdown", "--dry-run", code=1)
    assert markdown.startswith(f"### Canary: `{REF}` (canary) vs prod `1.0.0`: fail")
    assert "| error_rate | rate | fail | 0.30% | 0.10% |" in markdown, markdown


def test_a_guardrail_that_makes_no_sense_stops_with_what_to_fix(
    history_repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stage_canary(history_repo, capsys, "{provider: json, path: metrics.json}")
    config = history_repo / "registry/regops.yaml"
    config.write_text(config.read_text().replace('"max_increase": "10%"', '"quantile": 0.9'))
    commit(history_repo, "a rate with a quantile and no rule")
    before = (history_repo / VERSION_FILE).read_bytes()
    code = main(["canary", "check", "--now", NOW])
    err = capsys.readouterr().err
    assert code == 1 and "error_rate" in err, err
    assert (history_repo / VERSION_FILE).read_bytes() == before


# --- pull requests -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("errors", "title", "branch", "moved"),
    [
        (2, f"Promote {REF} to prod: canary passed", "regops/canary-sentiment-1.1.0-prod", "to: prod"),
        (60, f"Take {REF} out of staging: canary failed", "regops/canary-sentiment-1.1.0-rollback", "to: archived"),
    ],
    ids=["pass-opens-the-prod-pr", "fail-opens-the-rollback-pr"],
)
def test_a_final_verdict_opens_its_pull_request_once_with_the_evidence(  # noqa: PLR0917 - the table
    history_repo: Path,
    gh: GitHubFixture,
    capsys: pytest.CaptureFixture[str],
    errors: int,
    title: str,
    branch: str,
    moved: str,
) -> None:
    stage_canary(history_repo, capsys, "{provider: json, path: metrics.json}")
    (history_repo / "metrics.json").write_text(json.dumps(metrics_document(canary_errors=errors)))
    commit(history_repo, "metrics")
    origin = with_origin(history_repo, gh)
    out = check_and_pr(capsys, code=0 if errors == 2 else 1)
    assert "pull request: opened #1" in out, out
    # The result is on main (pushed) before the branch was cut from it.
    recorded = yaml.safe_load(git(origin, "show", f"main:{VERSION_FILE}"))["canary"]
    assert recorded["result"] == ("passed" if errors == 2 else "failed")
    assert git(origin, "show", f"{branch}:{VERSION_FILE}").count(moved) == 1
    pull = gh.client().get_repo(REPO).get_pull(1)
    assert (pull.title, pull.head.ref) == (title, branch)
    assert pull.body.startswith(f"### Canary: `{REF}` (canary) vs prod `1.0.0`: ")
    assert "| error_rate | rate |" in pull.body
    assert "canary" in {label.name for label in pull.labels}

    again = check_and_pr(capsys, code=0 if errors == 2 else 1)
    assert "#1 (open) already proposes this" in again, again
    assert gh.client().get_repo(REPO).get_pulls(state="all").totalCount == 1


def pr_check(capsys: pytest.CaptureFixture[str], number: int) -> tuple[int, str]:
    code = main(["pr", "check", "--pr", str(number)])
    out, err = capsys.readouterr()
    return code, out + err


def test_a_prod_pr_whose_canary_failed_on_main_since_it_opened_fails_its_check(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    stage_canary(history_repo, capsys, "{provider: json, path: metrics.json}")
    metrics = history_repo / "metrics.json"
    metrics.write_text(json.dumps(metrics_document(canary_errors=2)))
    commit(history_repo, "metrics")
    with_origin(history_repo, gh)
    assert "pull request: opened #1" in check_and_pr(capsys)
    gh.add_review(REPO, 1, "bob", "APPROVED")
    code, out = pr_check(capsys, 1)
    assert code == 0, out

    # The next check finds the canary failing: recorded on main, the rollback PR opened; the prod PR, unchanged
    # (its own copy still says passed), can no longer pass.
    metrics.write_text(json.dumps(metrics_document(canary_errors=60)))
    commit(history_repo, "metrics")
    assert "pull request: opened #2" in check_and_pr(capsys, code=1)
    code, out = pr_check(capsys, 1)
    assert code == 1, out
    assert "canary: failed (prod needs a passed canary)" in out


def test_a_pull_request_cannot_pass_its_own_canary(
    history_repo: Path, gh: GitHubFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    stage_canary(history_repo, capsys, "{provider: json, path: metrics.json}")
    with_origin(history_repo, gh)
    git(history_repo, "checkout", "-q", "-b", "ship-it")
    version = history_repo / VERSION_FILE
    version.write_text(version.read_text().replace("result: pending", "result: passed"))
    commit(history_repo, "the canary passed, says the branch")
    run_regops(capsys, history_repo, "promote", REF, "--to", "prod", "--notes", "trust me", "--by", "carol")
    git(history_repo, "push", "-q", "origin", "ship-it")
    gh.client(gh.carol_token).get_repo(REPO).create_pull(base="main", head="ship-it", title="Ship it", body="")
    gh.add_review(REPO, 1, "bob", "APPROVED")
    code, out = pr_check(capsys, 1)
    assert code == 1, out
    assert "canary: pending (prod needs a passed canary)" in out, "main's record counts, not the branch's"


# --- the example registry: the README's worked example, and the exact text the check writes ---------------

EXAMPLE_RECORD = """\
canary:
  traffic_percent: 5
  started_at: 2026-11-24T15:21:09Z
  result: passed
  checked_at: 2026-11-26T21:00:00Z
  summary: "pass: all 2 guardrails hold: error_rate within +10% of prod: upper bound -52.3%; latency_p99 p99 within +\
20% of prod: upper bound +13.3%"
  report:
    - metric: error_rate
      kind: rate
      verdict: pass
      canary: 0.001
      prod: 0.0035
      limit: 0.00385
      lower: -0.9057
      upper: -0.5229
      n_canary: 24000
      n_prod: 456000
      reason: "error_rate within +10% of prod: upper bound -52.3% (0.10% vs prod 0.35%, limit 0.39%; 95% bounds of th\
e excess over prod: -90.6% to -52.3%)"
      method: normal-mixture confidence sequence (Howard et al. 2021), one-sided, CLT variance
      looks: 1
    - metric: latency_p99
      kind: latency
      verdict: pass
      canary: 0.1867
      prod: 0.1833
      limit: 0.2199
      lower: -0.09127
      upper: 0.1335
      n_canary: 24000
      n_prod: 456000
      reason: "latency_p99 p99 within +20% of prod: upper bound +13.3% (187ms vs prod 183ms, limit 220ms; 95% bounds:\
 canary 170ms to 203ms, prod 179ms to 187ms)"
      method: normal-mixture confidence sequence (Howard et al. 2021), one-sided, CLT variance
      looks: 1
transitions:
"""


def test_the_example_registry_checks_as_the_readme_says_and_writes_exactly_this(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    root = Path(__file__).resolve().parents[1]
    for folder in ("registry", "examples", "schemas"):
        shutil.copytree(root / folder, tmp_path / folder)
    assert main(["canary", "check", "--registry", str(tmp_path / "registry"), "--now", "2026-11-26T21:00:00Z"]) == 1
    out = capsys.readouterr().out
    assert "sentiment@1.4.1 (canary) vs prod 1.3.1: pass" in out
    assert "support-intent@1.3.0 (canary) vs prod 1.2.0: fail" in out
    assert "fail: error_rate worse than +10% of prod: lower bound +70.4%" in out
    text = (tmp_path / "registry/models/sentiment/1.4.1.yaml").read_text()
    assert text[text.index("canary:\n") : text.index("transitions:\n") + len("transitions:\n")] == EXAMPLE_RECORD
    assert main(["validate", "--registry", str(tmp_path / "registry")]) == 0, capsys.readouterr().out
