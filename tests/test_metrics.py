"""The canary's metrics providers: a real Prometheus (backfilled by promtool), JSON files and JSON over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from regops.adapters.metrics import JsonSource, MetricsError, PrometheusSource, open_metrics
from regops.canary import Counts, Distribution
from tests.servers.prometheus import (
    LATENCY_GUARDRAIL,
    RATE_GUARDRAIL,
    T0,
    Arm,
    StartPrometheus,
    traffic_openmetrics,
)

INF = float("inf")
START, END = T0, T0 + timedelta(minutes=60)
# Prod serves the whole hour; the canary starts 20 minutes in; 1.2.0 is deployed but idle (no error counter yet).
PROD = Arm("1.0.0", requests=114_000, errors=570, latency={0.05: 30_000, 0.1: 100_000, 0.25: 113_000})
CANARY = Arm("1.1.0", requests=6_000, errors=60, latency={0.05: 1_200, 0.1: 4_800, 0.25: 5_900}, after_minutes=20)
IDLE = Arm("1.2.0", requests=0, errors=None)


@pytest.fixture(scope="module")
def prometheus_url(prometheus: StartPrometheus) -> str:
    return prometheus(traffic_openmetrics(PROD, CANARY, IDLE))


@pytest.fixture
def source(prometheus_url: str) -> PrometheusSource:
    source = open_metrics({"provider": "prometheus", "url": prometheus_url}, root=Path("/nonexistent"))
    assert isinstance(source, PrometheusSource)
    return source


def observe(source: Any, guardrail: dict[str, Any], version: str, **span: Any) -> Counts | Distribution:
    window = {"start": START, "end": END} | span
    result: Counts | Distribution = source.observe(guardrail, model="sentiment", version=version, **window)
    return result


# --- Prometheus -----------------------------------------------------------------------------------
# The data's first sample is at START (zero) and its last at END (the totals), and a window is END - START:
# increase() then sees samples on both edges of its range and extrapolates nothing, so the numbers are exact.


@pytest.mark.parametrize("arm", [PROD, CANARY], ids=["prod", "canary"])
def test_prometheus_reads_counts_and_buckets_as_written(source: PrometheusSource, arm: Arm) -> None:
    assert observe(source, RATE_GUARDRAIL, arm.version) == Counts(errors=arm.errors or 0, requests=arm.requests)
    assert observe(source, LATENCY_GUARDRAIL, arm.version) == Distribution(
        bounds=(0.05, 0.1, 0.25, INF),
        cumulative=(*arm.latency.values(), arm.requests),
    )


def test_prometheus_window_is_the_span_and_gauges_read_buckets(source: PrometheusSource) -> None:
    # The canary serves 6000 requests evenly over its 40 minutes: 4500 of them (and 45 of its 60 errors) in the last 30.
    last_half_hour = {"start": END - timedelta(minutes=30)}
    assert observe(source, RATE_GUARDRAIL, "1.1.0", **last_half_hour) == Counts(errors=45, requests=4500)
    gauge = LATENCY_GUARDRAIL | {"metric": "score", "kind": "gauge"}
    assert observe(source, gauge, "1.1.0", **last_half_hour) == Distribution(
        bounds=(0.05, 0.1, 0.25, INF), cumulative=(900, 3600, 4425, 4500)
    )


def test_served_since_finds_the_first_traffic(source: PrometheusSource) -> None:
    def served(version: str) -> Any:
        query = RATE_GUARDRAIL["requests"]
        return source.served_since(query, model="sentiment", version=version, start=START, end=END)

    # Steps of 60 s over the hour, each looking back one step: the answer is the first step after the first request.
    assert START + timedelta(minutes=20) < served("1.1.0") <= START + timedelta(minutes=21)
    assert START < served("1.0.0") <= START + timedelta(minutes=1)
    assert served("1.2.0") is None  # its counter exists, and stays at zero
    assert served("9.9.9") is None  # no counter at all


def test_a_missing_error_counter_says_no_series_and_how_to_default_it(source: PrometheusSource) -> None:
    with pytest.raises(MetricsError, match=r"no series for sum\(increase\(inference_errors_total") as caught:
        observe(source, RATE_GUARDRAIL, "1.2.0")
    assert "or vector(0)" in str(caught.value)
    assert str(caught.value).startswith("error_rate of sentiment@1.2.0: ")
    assert (caught.value.metric, caught.value.model, caught.value.version) == ("error_rate", "sentiment", "1.2.0")

    defaulted = RATE_GUARDRAIL | {"errors": RATE_GUARDRAIL["errors"] + " or vector(0)"}
    assert observe(source, defaulted, "1.2.0") == Counts(errors=0, requests=0)


def test_a_version_without_series_says_no_series(source: PrometheusSource) -> None:
    with pytest.raises(MetricsError, match=r'latency of sentiment@9\.9\.9: no series for .*version="9\.9\.9"'):
        observe(source, LATENCY_GUARDRAIL, "9.9.9")


@pytest.mark.parametrize(
    ("guardrail", "message"),
    [
        (
            RATE_GUARDRAIL | {"requests": 'increase(inference_requests_total{model="{model}"}[{window}])'},
            r"returned 3 series \(.*\), not one: aggregate with sum\(\)",
        ),
        (
            LATENCY_GUARDRAIL
            | {"buckets": 'sum(increase(inference_latency_seconds_bucket{version="{version}"}[{window}]))'},
            r"one series per bucket, labelled le: aggregate with sum by \(le\)",
        ),
        (
            LATENCY_GUARDRAIL
            | {
                "buckets": 'sum by (le) (increase(inference_latency_seconds_bucket{version="{version}",le!="+Inf"}[{window}]))'
            },
            r'has no "\+Inf" bucket',
        ),
        (
            RATE_GUARDRAIL | {"requests": 'inference_requests_total{version="{version}"}[{window}]'},
            r"returned a matrix, not a vector: use increase\(",
        ),
        (
            {"metric": "latency", "kind": "latency"},
            r"guardrail latency \(kind latency\) has no buckets query",
        ),
    ],
    ids=["several-series", "buckets-without-le", "buckets-without-inf", "range-vector", "no-query"],
)
def test_queries_of_the_wrong_shape_say_how_to_fix_them(
    source: PrometheusSource, guardrail: dict[str, Any], message: str
) -> None:
    with pytest.raises(MetricsError, match=message):
        observe(source, guardrail, "1.1.0")


def test_a_bad_query_carries_prometheus_error_text(source: PrometheusSource) -> None:
    broken = RATE_GUARDRAIL | {"requests": "sum(increase(inference_requests_total[{window}])"}
    with pytest.raises(MetricsError, match=r"HTTP 400 Bad Request: .*parse error: unclosed left parenthesis") as e:
        observe(source, broken, "1.1.0")
    assert "sum(increase(inference_requests_total[3600s])" in str(e.value)  # the query as sent


def test_prometheus_down_cannot_be_reached(closed_port: int, tmp_path: Path) -> None:
    source = open_metrics({"provider": "prometheus", "url": f"http://127.0.0.1:{closed_port}"}, root=tmp_path)
    with pytest.raises(MetricsError, match=rf"cannot reach http://127\.0\.0\.1:{closed_port}/api/v1/query .*refused"):
        observe(source, RATE_GUARDRAIL, "1.1.0")


# --- HTTP with a bearer token (a local server) -----------------------------------------------------

TOKEN = "s3cret-token"
DOC: dict[str, Any] = {
    "models": {
        "sentiment": {
            "1.1.0": {
                "error_rate": {"errors": 12, "requests": 5000},
                "latency": {"buckets": {"+Inf": 5000, "0.1": 400, "0.05": 120}},
                "score": {"samples": [0.3, 0.12, 0.3]},
            },
            "1.0.0": {"error_rate": {"errors": 40, "requests": 90000}},
        }
    }
}
PROMETHEUS_ANSWER = {
    "status": "success",
    "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "7"]}]},
}


@dataclass
class Local:
    """A local HTTP server: answers ``routes`` to requests bearing ``TOKEN``, 401 to others; records what came."""

    url: str
    routes: dict[str, bytes]
    authorizations: list[str | None] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


@pytest.fixture
def local() -> Iterator[Local]:
    with local_server() as state:
        yield state


@contextmanager
def local_server() -> Iterator[Local]:
    """A :class:`Local` serving ``DOC`` at /metrics.json, until the block ends."""
    state = Local(url="", routes={"/metrics.json": json.dumps(DOC).encode()})

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            state.paths.append(path)
            state.authorizations.append(self.headers.get("Authorization"))
            if path.startswith("/slow"):
                time.sleep(0.5)  # past the client's timeout; it has gone, so nothing is written back
                return
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._send(401, b'{"error": "missing or wrong token"}')
            elif path.endswith("/api/v1/query"):
                self._send(200, json.dumps(PROMETHEUS_ANSWER).encode())
            else:
                self._send(200, state.routes[path]) if path in state.routes else self._send(404, b"not found")

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def test_json_over_http_sends_the_bearer_token_and_reads_once(
    local: Local, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("METRICS_TOKEN", TOKEN)  # env defaults to os.environ
    provider = {"provider": "json", "url": f"{local.url}/metrics.json", "token_env": "METRICS_TOKEN"}
    source = open_metrics(provider, root=tmp_path, allowed_token_envs=["METRICS_TOKEN"])
    assert observe(source, RATE_GUARDRAIL, "1.1.0") == Counts(errors=12, requests=5000)
    assert observe(source, RATE_GUARDRAIL, "1.0.0") == Counts(errors=40, requests=90000)
    assert local.authorizations == [f"Bearer {TOKEN}"]  # one request for both observations


@pytest.mark.parametrize("env", [{}, {"METRICS_TOKEN": "wrong"}], ids=["no-token-env", "wrong-token"])
def test_json_over_http_refused_without_the_right_token(local: Local, env: dict[str, str], tmp_path: Path) -> None:
    provider: dict[str, Any] = {"provider": "json", "url": f"{local.url}/metrics.json"}
    if env:
        provider["token_env"] = "METRICS_TOKEN"
    source = open_metrics(provider, root=tmp_path, env=env, allowed_token_envs=["METRICS_TOKEN"])
    with pytest.raises(
        MetricsError, match=r"refused the metrics document: HTTP 401 .*missing or wrong token.*token_env"
    ):
        observe(source, RATE_GUARDRAIL, "1.1.0")
    assert local.authorizations == ([None] if not env else ["Bearer wrong"])


def test_prometheus_sends_the_bearer_token(local: Local, tmp_path: Path) -> None:
    provider = {"provider": "prometheus", "url": f"{local.url}/prom/", "token_env": "PROM_TOKEN"}
    source = open_metrics(provider, root=tmp_path, env={"PROM_TOKEN": TOKEN}, allowed_token_envs=["PROM_TOKEN"])
    assert observe(source, RATE_GUARDRAIL, "1.1.0") == Counts(errors=7, requests=7)
    assert local.paths == ["/prom/api/v1/query", "/prom/api/v1/query"]
    assert local.authorizations == [f"Bearer {TOKEN}"] * 2


def test_answers_that_are_not_json_or_too_slow(local: Local, tmp_path: Path) -> None:
    local.routes["/page.html"] = b"<html>a login page</html>"
    source = JsonSource(f"{local.url}/page.html", token=TOKEN)
    with pytest.raises(MetricsError, match=r"answered the metrics document with something that is not JSON"):
        observe(source, RATE_GUARDRAIL, "1.1.0")
    slow = PrometheusSource(f"{local.url}/slow", token=TOKEN, timeout=0.1)
    with pytest.raises(MetricsError, match=r"cannot reach http://127\.0\.0\.1:\d+/slow/api/v1/query .*timed out"):
        observe(slow, RATE_GUARDRAIL, "1.1.0")


# --- JSON files -----------------------------------------------------------------------------------


@pytest.fixture
def doc(tmp_path: Path) -> Path:
    path = tmp_path / "repo" / "metrics" / "canary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(DOC))
    return path


def json_source(doc: Path) -> JsonSource:
    source = open_metrics({"provider": "json", "path": "metrics/canary.json"}, root=doc.parent.parent)
    assert isinstance(source, JsonSource)
    return source


def test_json_file_reads_each_shape(doc: Path) -> None:
    source = json_source(doc)
    assert observe(source, RATE_GUARDRAIL, "1.1.0") == Counts(errors=12, requests=5000)
    assert observe(source, LATENCY_GUARDRAIL, "1.1.0") == Distribution((0.05, 0.1, INF), (120, 400, 5000))
    score = {"metric": "score", "kind": "gauge"}
    assert observe(source, score, "1.1.0") == Distribution((0.12, 0.3, INF), (1, 3, 3))
    doc.unlink()  # read once per source
    assert observe(source, RATE_GUARDRAIL, "1.0.0") == Counts(errors=40, requests=90000)


def test_json_file_by_absolute_path(doc: Path, tmp_path: Path) -> None:
    source = open_metrics({"provider": "json", "path": str(doc)}, root=tmp_path / "elsewhere")
    assert observe(source, RATE_GUARDRAIL, "1.1.0") == Counts(errors=12, requests=5000)


@pytest.mark.parametrize(
    ("model", "version", "metric", "message"),
    [
        ("other", "1.1.0", "error_rate", r"has no model 'other' \(it has: sentiment\)"),
        ("sentiment", "9.9.9", "error_rate", r"has no version 9\.9\.9 of sentiment \(it has: 1\.0\.0, 1\.1\.0\)"),
        ("sentiment", "1.0.0", "latency", r"has no metric 'latency' for sentiment@1\.0\.0 \(it has: error_rate\)"),
    ],
)
def test_json_names_what_is_missing(doc: Path, model: str, version: str, metric: str, message: str) -> None:
    guardrail = {"metric": metric, "kind": "rate"}
    with pytest.raises(MetricsError, match=message) as caught:
        json_source(doc).observe(guardrail, model=model, version=version, start=START, end=END)
    assert (caught.value.metric, caught.value.model, caught.value.version) == (metric, model, version)
    assert str(doc) in str(caught.value)


@pytest.mark.parametrize(
    ("entry", "kind", "message"),
    [
        ({"buckets": {"0.1": 3, "+Inf": 5}}, "rate", r'is not a rate: expected \{"errors": <count>'),
        ({"errors": 1.5, "requests": 10}, "rate", r"is not a rate: .*got \{\"errors\": 1\.5"),
        ({"errors": True, "requests": 10}, "rate", r"is not a rate"),
        ({"errors": 1, "requests": 10}, "latency", r'is not a distribution: expected \{"buckets"'),
        ({"samples": [0.1, "slow"]}, "gauge", r"is not a distribution"),
        ({"buckets": {"0.1": 3, "0.5": 4}}, "latency", r'has no "\+Inf" bucket'),
        ({"buckets": {}}, "latency", r'has no "\+Inf" bucket'),
        ({"buckets": {"0.1": 5, "0.5": 2, "+Inf": 9}}, "latency", r"bucket counts must be cumulative"),
        ({"buckets": {"fast": 5, "+Inf": 9}}, "latency", r"bucket bound 'fast' is not a number"),
    ],
)
def test_json_entries_of_the_wrong_shape(tmp_path: Path, entry: Any, kind: str, message: str) -> None:
    (tmp_path / "m.json").write_text(json.dumps({"models": {"sentiment": {"1.1.0": {"m": entry}}}}))
    with pytest.raises(MetricsError, match=rf"^m of sentiment@1\.1\.0: the entry in .*m\.json:? {message}"):
        observe(JsonSource(tmp_path / "m.json"), {"metric": "m", "kind": kind}, "1.1.0")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            None,
            r"cannot read the metrics document .*m\.json: No such file or directory \(check canary\.metrics\.path\)",
        ),
        ("{not json", r"m\.json holds something that is not JSON"),
        ('{"sentiment": {}}', r'm\.json has no top-level "models" object'),
        ("[1, 2]", r'has no top-level "models" object'),
    ],
    ids=["missing", "not-json", "no-models", "a-list"],
)
def test_unreadable_json_documents(tmp_path: Path, content: str | None, message: str) -> None:
    if content is not None:
        (tmp_path / "m.json").write_text(content)
    with pytest.raises(MetricsError, match=message):
        observe(JsonSource(tmp_path / "m.json"), RATE_GUARDRAIL, "1.1.0")


# --- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        ({"provider": "prometheus"}, r"provider: prometheus but no url: set url"),
        ({"provider": "json"}, r"provider: json but neither path nor url: set path"),
        ({"provider": "json", "path": "m.json", "url": "http://127.0.0.1:1/m.json"}, r"sets both path and url"),
        (
            {"provider": "json", "path": "m.json", "token_env": "METRICS_TOKEN"},
            r"token_env names METRICS_TOKEN, which is not set: export METRICS_TOKEN=<token>",
        ),
        ({"provider": "graphite", "url": "http://g"}, r"canary\.metrics is invalid: provider: Input should be"),
    ],
)
def test_configuration_errors_say_which_key_to_set(tmp_path: Path, provider: dict[str, Any], message: str) -> None:
    with pytest.raises(MetricsError, match=message):
        open_metrics(provider, root=tmp_path, env={}, allowed_token_envs=["METRICS_TOKEN"])


def test_an_invalid_guardrail_is_an_error(doc: Path) -> None:
    with pytest.raises(MetricsError, match=r"the guardrail is invalid: kind: Input should be 'rate', 'latency'"):
        observe(json_source(doc), {"metric": "error_rate", "kind": "p99"}, "1.1.0")


# --- which variable may hold the token ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token_env", "allowed", "message"),
    [
        ("GITHUB_TOKEN", ["GITHUB_TOKEN"], "GITHUB_TOKEN holds a GitHub or Hub credential, which regops never sends"),
        ("GH_TOKEN", ["GH_TOKEN"], "GH_TOKEN holds a GitHub or Hub credential"),
        ("ACTIONS_RUNTIME_TOKEN", ["ACTIONS_RUNTIME_TOKEN"], "ACTIONS_RUNTIME_TOKEN holds a GitHub or Hub credential"),
        ("HF_TOKEN", ["HF_TOKEN"], "HF_TOKEN holds a GitHub or Hub credential"),
        ("HUGGING_FACE_HUB_TOKEN", ["HUGGING_FACE_HUB_TOKEN"], "HUGGING_FACE_HUB_TOKEN holds a GitHub or Hub"),
        ("github_token", ["github_token"], "github_token holds a GitHub or Hub credential"),
        (
            "METRICS_TOKEN",
            ["PROMETHEUS_TOKEN"],
            r"METRICS_TOKEN is not in canary\.allowed_token_envs of regops\.yaml \(listed: PROMETHEUS_TOKEN\): add it",
        ),
        ("METRICS_TOKEN", [], r"METRICS_TOKEN is not in canary\.allowed_token_envs of regops\.yaml \(listed: none\)"),
    ],
)
@pytest.mark.parametrize("kind", ["json", "prometheus"])
def test_a_token_env_that_is_a_credential_or_not_allowed_is_never_read_or_sent(  # noqa: PLR0917 - the table
    local: Local, tmp_path: Path, token_env: str, allowed: list[str], message: str, kind: str
) -> None:
    url = f"{local.url}/metrics.json" if kind == "json" else f"{local.url}/prom"
    provider = {"provider": kind, "url": url, "token_env": token_env}
    with pytest.raises(MetricsError, match=rf"^canary\.metrics\.token_env refused: {message}"):
        open_metrics(provider, root=tmp_path, env={token_env: TOKEN}, allowed_token_envs=allowed)
    assert local.paths == [], "no source is opened, so nothing is ever sent"
