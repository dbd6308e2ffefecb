"""Live metrics of a model version for the canary: a Prometheus server's HTTP API, or a JSON document.

A source answers one question, :meth:`MetricsSource.observe`: what did this
guardrail's metric look like for ``model@version`` between ``start`` and ``end``?
A ``rate`` guardrail becomes :class:`~regops.canary.Counts`, a ``latency`` or
``gauge`` guardrail a cumulative :class:`~regops.canary.Distribution`.

* ``prometheus``: the guardrail's PromQL templates are filled (``{model}``,
  ``{version}``, ``{window}`` = the span in seconds, e.g. ``3600s``) and run as
  instant queries at ``end`` (``/api/v1/query``); :meth:`PrometheusSource.served_since`
  finds when a version's traffic began (``/api/v1/query_range``).
* ``json``: ``{"models": {model: {version: {metric: entry}}}}`` from a file or a
  URL, read once per source; an entry is ``{"errors": N, "requests": N}``,
  ``{"buckets": {"0.1": N, …, "+Inf": N}}`` (cumulative) or ``{"samples": [...]}``.

Both speak HTTP with the standard library. Every way a request can fail becomes
a :class:`MetricsError` in one function (:func:`_get_json`), and every error met
while reading a guardrail names its metric, model and version (:func:`_about`).
"""

from __future__ import annotations

import http.client
import itertools
import json
import math
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic reads typing.TypedDict only from Python 3.12

from regops.adapters.timeouts import StalledError, Timeouts, Watchdog, http_timeouts
from regops.canary import Counts, Distribution
from regops.errors import RegopsError
from regops.files import Guardrail, MetricsProvider
from regops.tokens import token_env_problem

__all__ = ["JsonSource", "MetricsError", "MetricsSource", "PrometheusSource", "open_metrics"]

# served_since: at most ~200 points per series, never finer than a minute.
MIN_STEP_SECONDS: Final = 60
MAX_POINTS: Final = 200
ERRORS_HINT: Final = (
    "; an error counter appears with the first error: append `or vector(0)` to the query if there may be none yet"
)
REQUESTS_HINT: Final = "; has this version served traffic in the window, and do the metric and label names match?"

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class MetricsError(RegopsError):
    """Live metrics could not be read: a server out of reach, a refused query, no series, a document without them.

    ``metric``, ``model`` and ``version`` are set when the error concerns one guardrail of one version.
    """

    def __init__(
        self, message: str, *, metric: str | None = None, model: str | None = None, version: str | None = None
    ) -> None:
        self.metric = metric
        self.model = model
        self.version = version
        super().__init__(message)


class MetricsSource(Protocol):
    """Where a canary's live metrics come from (:func:`open_metrics` picks one from the configuration)."""

    def observe(
        self, guardrail: Mapping[str, Any], *, model: str, version: str, start: datetime, end: datetime
    ) -> Counts | Distribution:
        """The guardrail's metric for ``model@version`` over ``start``..``end``."""
        ...


def open_metrics(
    provider: Mapping[str, Any],
    *,
    root: Path,
    env: Mapping[str, str] | None = None,
    allowed_token_envs: Collection[str] = (),
) -> MetricsSource:
    """The source a ``canary.metrics`` block describes.

    ``root`` is the repository root (a relative json ``path`` is read from it);
    ``env`` (default ``os.environ``) holds the bearer token named by ``token_env``,
    which must be one of ``allowed_token_envs`` (regops.yaml's) and no GitHub or Hub
    credential: else nothing is read from ``env`` and no source is opened.
    """
    config = _validated(MetricsProvider, provider, "canary.metrics")
    token = _token(config, os.environ if env is None else env, allowed_token_envs)
    if config.provider == "prometheus":
        if not config.url:
            raise MetricsError(
                "canary.metrics has provider: prometheus but no url: set url to the server's base URL "
                "(e.g. http://prometheus:9090)"
            )
        return PrometheusSource(config.url, token=token)
    return JsonSource(_json_location(config, root), token=token)


class PrometheusSource:
    """Guardrails as PromQL instant queries against a Prometheus server's HTTP API."""

    def __init__(self, url: str, *, token: str | None = None, timeout: float | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = _limits(timeout)

    def observe(
        self, guardrail: Mapping[str, Any], *, model: str, version: str, start: datetime, end: datetime
    ) -> Counts | Distribution:
        rail = _validated(Guardrail, guardrail, "the guardrail")
        window = f"{_seconds(start, end)}s"
        with _about(rail.metric, model=model, version=version):
            if rail.kind == "rate":
                errors = self._one(_fill(_query(rail, "errors"), model, version, window), end, ERRORS_HINT)
                requests = self._one(_fill(_query(rail, "requests"), model, version, window), end, REQUESTS_HINT)
                return Counts(errors=round(errors), requests=round(requests))
            return self._distribution(_fill(_query(rail, "buckets"), model, version, window), end)

    def served_since(
        self, requests_query: str, *, model: str, version: str, start: datetime, end: datetime
    ) -> datetime | None:
        """When ``model@version`` first served a request between ``start`` and ``end`` (None: it never did).

        ``requests_query`` is a rate guardrail's ``requests`` template; it runs over
        the span in steps of ``max(60s, span/200)`` with ``{window}`` = one step, and
        the answer is the first step at which the counter had increased.
        """
        step = max(MIN_STEP_SECONDS, math.ceil(_seconds(start, end) / MAX_POINTS))
        query = _fill(requests_query, model, version, f"{step}s")
        params = {"query": query, "start": _unix(start), "end": _unix(end), "step": f"{step}s"}
        with _about(None, model=model, version=version):
            data = self._api("query_range", params, query)
            series = _result(data, "matrix", _SERIES, query)
            first = [_first_increase(one["values"], query) for one in series]
        times = [t for t in first if t is not None]
        return datetime.fromtimestamp(min(times), tz=UTC) if times else None

    def _api(self, endpoint: str, params: Mapping[str, str], query: str) -> Mapping[str, Any]:
        url = f"{self.url}/api/v1/{endpoint}?{urllib.parse.urlencode(params)}"
        answer = _get_json(url, token=self.token, timeout=self.timeout, what=f"the query {query}")
        if isinstance(answer, dict) and answer.get("status") == "success" and isinstance(answer.get("data"), dict):
            data: Mapping[str, Any] = answer["data"]
            return data
        error = answer.get("error") if isinstance(answer, dict) else None
        raise MetricsError(
            f"Prometheus at {self.url} did not answer the query {query}: "
            f"{error or 'not a Prometheus API response'} (is canary.metrics.url the server's base URL?)"
        )

    def _vector(self, query: str, at: datetime) -> list[_Sample]:
        data = self._api("query", {"query": query, "time": _unix(at)}, query)
        return _result(data, "vector", _SAMPLES, query)

    def _one(self, query: str, at: datetime, hint: str) -> float:
        samples = self._vector(query, at)
        if not samples:
            raise MetricsError(f"no series for {query}{hint}")
        if len(samples) > 1:
            labels = ", ".join(_labels(s["metric"]) for s in samples[:3]) + (", …" if len(samples) > 3 else "")
            raise MetricsError(
                f"{query} returned {len(samples)} series ({labels}), not one: aggregate with sum(), "
                'e.g. sum(increase(requests_total{version="{version}"}[{window}]))'
            )
        return _value(samples[0]["value"][1], query)

    def _distribution(self, query: str, at: datetime) -> Distribution:
        samples = self._vector(query, at)
        if not samples:
            raise MetricsError(f"no series for {query}{REQUESTS_HINT}")
        buckets: dict[str, float] = {}
        for sample in samples:
            le = sample["metric"].get("le")
            if le is None or le in buckets:
                raise MetricsError(
                    f"{query} must return one series per bucket, labelled le: aggregate with "
                    'sum by (le) (increase(latency_seconds_bucket{version="{version}"}[{window}]))'
                )
            buckets[le] = _value(sample["value"][1], query)
        return _cumulative(buckets, where=query, even=True)


class JsonSource:
    """Guardrails read from a JSON document (a file, or a URL fetched with the bearer token), once per source."""

    def __init__(self, location: Path | str, *, token: str | None = None, timeout: float | None = None) -> None:
        self.location = location
        self.token = token
        self.timeout = _limits(timeout)
        self._document: Any = None
        self._loaded = False

    def observe(
        self, guardrail: Mapping[str, Any], *, model: str, version: str, start: datetime, end: datetime
    ) -> Counts | Distribution:
        rail = _validated(Guardrail, guardrail, "the guardrail")
        with _about(rail.metric, model=model, version=version):
            entry = self._entry(rail.metric, model, version)
            where = f"the entry in {self.location}"
            if rail.kind == "rate":
                return _counts(entry, where)
            return _json_distribution(entry, where)

    def document(self) -> Any:
        """The parsed document, read on first use and kept."""
        if not self._loaded:
            if isinstance(self.location, Path):
                self._document = _read_json_file(self.location)
            else:
                self._document = _get_json(
                    self.location, token=self.token, timeout=self.timeout, what="the metrics document"
                )
            self._loaded = True
        return self._document

    def _entry(self, metric: str, model: str, version: str) -> Any:
        node = self.document()
        steps = (
            ("models", 'top-level "models" object ({"models": {"<model>": {"<version>": {"<metric>": …}}}})'),
            (model, f"model {model!r}"),
            (version, f"version {version} of {model}"),
            (metric, f"metric {metric!r} for {model}@{version}"),
        )
        for key, name in steps:
            if not isinstance(node, dict) or key not in node:
                known = f" (it has: {', '.join(sorted(map(str, node)))})" if isinstance(node, dict) and node else ""
                raise MetricsError(f"{self.location} has no {name}{known}; add it, or check the names")
            node = node[key]
        return node


# --- reading a guardrail ------------------------------------------------------------------------


@contextmanager
def _about(metric: str | None, *, model: str, version: str) -> Iterator[None]:
    """Errors raised while reading one guardrail name it, here rather than in every helper."""
    try:
        yield
    except MetricsError as e:
        if e.model is not None:
            raise
        subject = f"{metric} of {model}@{version}" if metric else f"{model}@{version}"
        raise MetricsError(f"{subject}: {e}", metric=metric, model=model, version=version) from e


def _validated(model: type[M], value: Mapping[str, Any], what: str) -> M:
    try:
        return model.model_validate(dict(value))
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or '(top)'}: {err['msg']}" for err in e.errors())
        raise MetricsError(f"{what} is invalid: {problems} (run `regops validate`)") from e


def _token(config: MetricsProvider, env: Mapping[str, str], allowed: Collection[str]) -> str | None:
    if config.token_env is None:
        return None
    if refused := token_env_problem(config.token_env, allowed):
        raise MetricsError(f"canary.metrics.token_env refused: {refused}")
    token = env.get(config.token_env)
    if not token:
        raise MetricsError(
            f"canary.metrics.token_env names {config.token_env}, which is not set: export {config.token_env}=<token> "
            "(in a workflow, from a secret)"
        )
    return token


def _json_location(config: MetricsProvider, root: Path) -> Path | str:
    if config.path and config.url:
        raise MetricsError("canary.metrics sets both path and url: keep one (path: a file, url: a document to GET)")
    if config.path:
        return root / config.path
    if config.url:
        return config.url
    raise MetricsError(
        "canary.metrics has provider: json but neither path nor url: set path (a file, relative to the repository) "
        "or url"
    )


def _query(rail: Guardrail, name: str) -> str:
    template: str | None = getattr(rail, name)
    if template is None:
        needs = "errors and requests" if rail.kind == "rate" else "buckets"
        raise MetricsError(
            f"guardrail {rail.metric} (kind {rail.kind}) has no {name} query: a Prometheus guardrail of this kind "
            f"needs {needs} (PromQL with {{model}}, {{version}} and {{window}})"
        )
    return template


def _fill(template: str, model: str, version: str, window: str) -> str:
    # PromQL has braces of its own ({label="…"}), so str.format is out: only these three are replaced.
    for name, value in (("model", model), ("version", version), ("window", window)):
        template = template.replace(f"{{{name}}}", value)
    return template


def _seconds(start: datetime, end: datetime) -> int:
    return max(1, round((end - start).total_seconds()))


def _unix(moment: datetime) -> str:
    return f"{moment.timestamp():.3f}"


# --- Prometheus answers ---------------------------------------------------------------------------


class _Sample(TypedDict):
    metric: dict[str, str]
    value: tuple[float, str]


class _Series(TypedDict):
    metric: dict[str, str]
    values: list[tuple[float, str]]


_SAMPLES: Final = TypeAdapter(list[_Sample])
_SERIES: Final = TypeAdapter(list[_Series])


def _result(data: Mapping[str, Any], kind: str, adapter: TypeAdapter[list[T]], query: str) -> list[T]:
    got = data.get("resultType")
    if got != kind:
        advice = ": use increase(…[{window}]) around a range selector" if got == "matrix" else ""
        raise MetricsError(f"{query} returned a {got}, not a {kind}{advice}")
    try:
        return adapter.validate_python(data.get("result"))
    except ValidationError as e:
        raise MetricsError(f"Prometheus answered {query} with an unexpected result: {e.errors()[0]['msg']}") from e


def _value(text: str, query: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MetricsError(f"{query} returned {text}: check the query (a division by zero?)")
    return value


def _first_increase(values: list[tuple[float, str]], query: str) -> float | None:
    for at, text in values:
        if _value(text, query) > 0:
            return at
    return None


def _labels(metric: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


# --- buckets, counts, samples -------------------------------------------------------------------


def _cumulative(buckets: Mapping[str, float], *, where: str, even: bool = False) -> Distribution:
    """Buckets keyed by ``le`` ("0.1", "+Inf") as a Distribution.

    ``even``: let no bucket hold fewer than the one below it. increase() extrapolates
    each bucket series on its own, so Prometheus' counts can dip by a fraction
    (histogram_quantile evens them the same way); in a document a dip is a mistake.
    """
    pairs = sorted((_bound(le, where), count) for le, count in buckets.items())
    if not pairs or pairs[-1][0] != math.inf:
        raise MetricsError(f'{where} has no "+Inf" bucket: it holds the total count, and is required')
    counts = [count for _, count in pairs]
    if even:
        counts = list(_running_max(counts))
    elif any(b < a for a, b in itertools.pairwise(counts)):
        raise MetricsError(
            f"{where}: bucket counts must be cumulative (each counts values <= its bound, +Inf all of them)"
        )
    return Distribution(tuple(bound for bound, _ in pairs), tuple(counts))


def _bound(le: str, where: str) -> float:
    try:
        bound = float(le)
    except ValueError:
        raise MetricsError(f'{where}: bucket bound {le!r} is not a number (expected e.g. "0.25" or "+Inf")') from None
    if math.isnan(bound):
        raise MetricsError(f"{where}: bucket bound {le!r} is not a number")
    return bound


def _running_max(values: Iterable[float]) -> Iterator[float]:
    top = -math.inf
    for value in values:
        top = max(top, value)
        yield top


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _counts(entry: Any, where: str) -> Counts:
    if not isinstance(entry, dict) or not (_is_count(entry.get("errors")) and _is_count(entry.get("requests"))):
        raise MetricsError(
            f'{where} is not a rate: expected {{"errors": <count>, "requests": <count>}} (whole numbers >= 0), '
            f"got {_show(entry)}"
        )
    return Counts(errors=entry["errors"], requests=entry["requests"])


def _json_distribution(entry: Any, where: str) -> Distribution:
    expected = 'expected {"buckets": {"<le>": <count>, …, "+Inf": <count>}} or {"samples": [<number>, …]}'
    if isinstance(entry, dict) and isinstance(entry.get("buckets"), dict):
        buckets = entry["buckets"]
        if all(_is_number(count) for count in buckets.values()):
            return _cumulative(buckets, where=where)
    if isinstance(entry, dict) and isinstance(entry.get("samples"), list):
        samples = entry["samples"]
        if all(_is_number(sample) for sample in samples):
            return Distribution.from_samples([float(s) for s in samples])
    raise MetricsError(f"{where} is not a distribution: {expected}, got {_show(entry)}")


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- the one place that talks to the outside ---------------------------------------------------


def _limits(read: float | None) -> Timeouts:
    """The environment's timeouts (REGOPS_HTTP_TIMEOUT…); ``read`` overrides the read timeout."""
    limits = http_timeouts()
    return limits if read is None else Timeouts(limits.connect, read)


def _get_json(url: str, *, token: str | None, timeout: Timeouts, what: str) -> Any:
    """GET ``url`` and parse its JSON; every way this can fail becomes a MetricsError, here and only here."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if token:
        # Unredirected: a redirect to another host must not carry the token along.
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    site = _site(url)
    try:
        # urllib has one socket timeout, for connecting and every wait for bytes: the read timeout (the longer one);
        # the watchdog catches a body that drips.
        with urllib.request.urlopen(request, timeout=timeout.read) as response:
            body = _read_watched(response, f"{site} ({what})", timeout)
    except urllib.error.HTTPError as e:
        with e:
            raise MetricsError(_refused(site, what, e.code, e.reason, e.read())) from e
    except StalledError as e:
        raise MetricsError(f"{e} (canary.metrics)") from e
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        reason = e.reason if isinstance(e, urllib.error.URLError) else e
        raise MetricsError(
            f"cannot reach {site} for {what}: {reason} (check canary.metrics.url and that the server is up)"
        ) from e
    return _parse_json(body, f"{site} answered {what} with")


def _read_watched(response: http.client.HTTPResponse, what: str, timeout: Timeouts) -> bytes:
    watchdog, parts = Watchdog(what, timeout), []
    while chunk := response.read1(1 << 16):
        watchdog.got(len(chunk))
        parts.append(chunk)
    return b"".join(parts)


def _refused(site: str, what: str, code: int, reason: str, body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    detail = answer.get("error") if isinstance(answer, dict) else None
    text = str(detail) if detail else body.decode(errors="replace").strip()[:200]
    advice = {
        400: "fix the query",
        401: "check the token in the variable canary.metrics.token_env names",
        403: "check the token in the variable canary.metrics.token_env names",
        404: "check canary.metrics.url",
        422: "fix the query",
    }.get(code, "retry later, or ask the server's owners")
    return f"{site} refused {what}: HTTP {code} {reason}: {text or '(no details)'}; {advice}"


def _read_json_file(path: Path) -> Any:
    try:
        body = path.read_bytes()
    except OSError as e:
        raise MetricsError(
            f"cannot read the metrics document {path}: {e.strerror or e} (check canary.metrics.path)"
        ) from e
    return _parse_json(body, f"{path} holds")


def _parse_json(body: bytes, where: str) -> Any:
    try:
        return json.loads(body)
    except ValueError as e:
        raise MetricsError(f"{where} something that is not JSON ({e}); check canary.metrics") from e


def _site(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else url
