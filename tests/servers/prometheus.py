"""A real Prometheus for tests, holding made-up traffic: ``promtool`` backfills it, ``prometheus`` serves it.

The test states its traffic in a line (:func:`traffic_openmetrics`, one :class:`Arm`
per version), and the ``prometheus`` fixture serves it::

    CANARY = Arm("1.1.0", requests=6000, errors=60, latency={0.1: 4800, 0.25: 5900})
    PROD = Arm("1.0.0", requests=114000, errors=570, latency={0.1: 100000, 0.25: 113000})

    @pytest.fixture(scope="module")
    def prometheus_url(prometheus: StartPrometheus) -> str:
        return prometheus(traffic_openmetrics(CANARY, PROD))

and the test queries ``prometheus_url`` over ``T0``..``T0 + 60 minutes`` (the default span).

How: the OpenMetrics text goes through ``promtool tsdb create-blocks-from
openmetrics`` into a fresh data folder, then ``prometheus`` starts on it with no
scrape targets, on a free port of 127.0.0.1, and the fixture waits for ``/-/ready``.
Blocks are read when the server starts: blocks written into the folder of a running
server stay invisible until its next periodic reload (about a minute), so every data
set gets a server of its own. Retention is set to 100 years so that made-up data
from years ago (``T0`` is 2024-01-01) is never dropped by the default 15 days.
Overlapping blocks need no flag (allowed by default since Prometheus 2.39; 2.42 no
longer lists the flag).

Without ``prometheus`` or ``promtool`` on PATH (or in /usr/bin) the tests that use the
fixture are skipped, unless ``REGOPS_REQUIRE_PROMETHEUS=1`` (CI) makes them fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import pytest

__all__ = [
    "LATENCY_GUARDRAIL",
    "RATE_GUARDRAIL",
    "T0",
    "Arm",
    "PrometheusServer",
    "StartPrometheus",
    "prometheus",
    "traffic_openmetrics",
]

T0: Final = datetime(2024, 1, 1, tzinfo=UTC)
REQUIRE_ENV: Final = "REGOPS_REQUIRE_PROMETHEUS"
READY_TIMEOUT: Final = 30.0

# Guardrails as a user writes them for the series traffic_openmetrics() renders.
RATE_GUARDRAIL: Final = {
    "metric": "error_rate",
    "kind": "rate",
    "errors": 'sum(increase(inference_errors_total{model="{model}",version="{version}"}[{window}]))',
    "requests": 'sum(increase(inference_requests_total{model="{model}",version="{version}"}[{window}]))',
}
LATENCY_GUARDRAIL: Final = {
    "metric": "latency",
    "kind": "latency",
    "buckets": (
        'sum by (le) (increase(inference_latency_seconds_bucket{model="{model}",version="{version}"}[{window}]))'
    ),
}

StartPrometheus = Callable[[str], str]
"""The ``prometheus`` fixture: OpenMetrics text in, the base URL of a Prometheus serving it out."""


@dataclass(frozen=True)
class Arm:
    """One version's traffic: totals reached at the end of the span, growing evenly from zero.

    ``latency`` is cumulative, like Prometheus' ``le`` buckets: upper bound in seconds →
    requests at most that slow; the ``+Inf`` bucket (all ``requests``) is added.
    ``errors=None``: the version has no error counter at all (it never failed).
    ``after_minutes``: the counters stay at zero that long before traffic starts.
    """

    version: str
    requests: int
    errors: int | None = 0
    latency: Mapping[float, int] = field(default_factory=dict)
    after_minutes: int = 0


def traffic_openmetrics(
    *arms: Arm, model: str = "sentiment", start: datetime = T0, minutes: int = 60, interval_seconds: int = 30
) -> str:
    """OpenMetrics text of ``arms`` over ``start``..``start + minutes``, one sample every ``interval_seconds``.

    Series: ``inference_requests_total``, ``inference_errors_total`` and the histogram
    ``inference_latency_seconds`` (``_bucket{le}``, ``_count``), labelled ``model`` and
    ``version``. The first sample is at ``start`` (all zero) and the last at the end
    (the totals), so ``increase(…[<minutes>m])`` evaluated at the end reads the totals
    back exactly: both samples lie on the range's edges, nothing is extrapolated.
    """
    times = [start + timedelta(seconds=s) for s in range(0, minutes * 60 + 1, interval_seconds)]
    families = {
        "inference_requests": "counter",
        "inference_errors": "counter",
        "inference_latency_seconds": "histogram",
    }
    samples = [(arm, _moment(arm, at, start=start, minutes=minutes)) for arm in arms for at in times]
    lines: list[str] = []
    for family, kind in families.items():
        points = [line for arm, moment in samples for line in _points(family, arm, model, moment)]
        lines.extend([f"# TYPE {family} {kind}", *points] if points else [])
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Moment:
    at: datetime
    done: int  # seconds of the arm's traffic served by ``at``…
    whole: int  # …out of this many

    def part(self, total: int) -> int:
        return total * self.done // self.whole  # floor: monotone in time and across buckets, exact at the end


def _moment(arm: Arm, at: datetime, *, start: datetime, minutes: int) -> _Moment:
    served = max(0, round((at - start).total_seconds()) - arm.after_minutes * 60)
    return _Moment(at, served, (minutes - arm.after_minutes) * 60)


def _points(family: str, arm: Arm, model: str, moment: _Moment) -> list[str]:
    labels = f'model="{model}",version="{arm.version}"'
    stamp = f"{moment.at.timestamp():.0f}"
    if family == "inference_requests":
        return [f"inference_requests_total{{{labels}}} {moment.part(arm.requests)} {stamp}"]
    if family == "inference_errors":
        return [] if arm.errors is None else [f"inference_errors_total{{{labels}}} {moment.part(arm.errors)} {stamp}"]
    bounds = sorted(arm.latency)
    buckets = [*((f"{bound:g}", arm.latency[bound]) for bound in bounds), ("+Inf", arm.requests)]
    return [
        *(f'{family}_bucket{{{labels},le="{le}"}} {moment.part(n)} {stamp}' for le, n in buckets),
        f"{family}_count{{{labels}}} {moment.part(arm.requests)} {stamp}",
    ]


# --- the server ---------------------------------------------------------------------------------


def binaries() -> tuple[str, str] | None:
    """``prometheus`` and ``promtool``, from PATH or /usr/bin (Debian's package); None if either is missing."""
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin"])
    found = (shutil.which("prometheus", path=search), shutil.which("promtool", path=search))
    return (found[0], found[1]) if found[0] and found[1] else None


class PrometheusServer:
    """A Prometheus serving the blocks backfilled from ``openmetrics``, in ``folder`` (a context manager)."""

    def __init__(self, openmetrics: str, folder: Path, *, prometheus: str, promtool: str) -> None:
        self.folder = folder
        self.openmetrics = openmetrics
        self.prometheus = prometheus
        self.promtool = promtool
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrometheusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        source = self.folder / "traffic.om.txt"
        source.write_text(self.openmetrics, encoding="utf-8")
        data = self.folder / "data"
        _run([self.promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data)])
        (self.folder / "prometheus.yml").write_text("global: {}\n", encoding="utf-8")  # no scrape targets
        for _attempt in range(3):  # another process may take the free port before Prometheus binds it
            if self._launch(data, _free_port()):
                return
        raise RuntimeError(f"Prometheus did not start; its log:\n{self._log()}")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def _launch(self, data: Path, port: int) -> bool:
        with (self.folder / "prometheus.log").open("wb") as log:
            self._process = subprocess.Popen(
                [
                    self.prometheus,
                    f"--storage.tsdb.path={data}",
                    f"--config.file={self.folder / 'prometheus.yml'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                    "--storage.tsdb.retention.time=100y",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.url = f"http://127.0.0.1:{port}"
        ready = False
        try:
            ready = _wait_ready(self.url, self._process)
        finally:
            if not ready:
                self.stop()
        return ready

    def _log(self) -> str:
        path = self.folder / "prometheus.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:4])} failed:\n{done.stdout}{done.stderr}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_ready(url: str, process: subprocess.Popen[bytes]) -> bool:
    """True once ``/-/ready`` answers 200; False if the process exits first. Raises after READY_TIMEOUT."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"Prometheus at {url} was not ready after {READY_TIMEOUT:.0f}s")


def _require_binaries() -> tuple[str, str]:
    found = binaries()
    if found is None:
        reason = "prometheus and promtool are not installed (apt-get install prometheus)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires them")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartPrometheus]:
    """Start a Prometheus serving the given OpenMetrics text; its base URL. Stopped when the module's tests are done.

    The same text twice gives the same server, so module-scoped fixtures and tests may share data sets.
    """
    prometheus_bin, promtool_bin = _require_binaries()
    servers: dict[str, PrometheusServer] = {}

    def start(openmetrics: str) -> str:
        if openmetrics not in servers:
            folder = tmp_path_factory.mktemp("prometheus")
            server = PrometheusServer(openmetrics, folder, prometheus=prometheus_bin, promtool=promtool_bin)
            server.start()
            servers[openmetrics] = server
        return servers[openmetrics].url

    yield start
    for server in servers.values():
        server.stop()
