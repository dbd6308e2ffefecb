"""GitHub's published OpenAPI description of its REST API, and validation of responses against it.

Where it comes from
    The npm package ``@octokit/openapi`` (major version ``OPENAPI_MAJOR``), GitHub's own description of
    api.github.com as republished by Octokit. :func:`install` runs ``npm install --no-save`` into a cache directory
    outside the repository the first time, and reuses it afterwards: ``$REGOPS_TEST_CACHE``, else
    ``$XDG_CACHE_HOME/regops-test``, else ``~/.cache/regops-test`` (read when this module is imported, before tests
    isolate HOME), then ``openapi-<major>/``. Nothing of it is committed. Without npm it raises
    :class:`SpecUnavailable`, so that callers can skip what needs the description.

What it checks
    :meth:`GitHubOpenAPI.validate_response` finds the operation of a method and a path (a template of the
    description, ``/repos/{owner}/{repo}/pulls/{pull_number}``, or a concrete path, ``/repos/acme/models/pulls/7``)
    and validates a JSON body against the schema the description gives for the status, with ``jsonschema``
    (draft 2020-12 after translating OpenAPI 3.0's ``nullable``; formats are not asserted). An error status the
    operation does not list is checked against GitHub's generic error shapes (``basic-error``, and
    ``validation-error`` for 422), which every GitHub error body follows; an undocumented success status is a
    violation. Violations come back as a list of readable strings, empty when the response conforms.

The description is about 13 MB: :func:`load` parses it once per process and translates each schema only when a
validation first reaches it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

OPENAPI_PACKAGE = "@octokit/openapi"
OPENAPI_MAJOR = "23"
DOCUMENT = "generated/api.github.com.json"
SCHEMA_PREFIX = "#/components/schemas/"
SCHEMA_URI = "urn:github-openapi:schema:"
MAX_VIOLATIONS = 10
MAX_MESSAGE = 300
INSTALL_TIMEOUT = 300

# Keywords of OpenAPI 3.0 schema objects that only document (or that JSON Schema does not know).
_ANNOTATIONS = frozenset(
    {"description", "title", "example", "examples", "nullable", "readOnly", "writeOnly", "deprecated", "xml"}
    | {"discriminator", "externalDocs"}
)


class SpecUnavailable(RuntimeError):
    """The OpenAPI description cannot be installed here (npm is missing)."""


def _default_cache() -> Path:
    explicit = os.environ.get("REGOPS_TEST_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "regops-test"


DEFAULT_CACHE = _default_cache()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install(cache: Path | None = None) -> Path:
    """The path of ``api.github.com.json``, installing ``@octokit/openapi`` with npm into ``cache`` if needed."""
    target = (cache or DEFAULT_CACHE) / f"openapi-{OPENAPI_MAJOR}"
    document = target / "node_modules" / OPENAPI_PACKAGE / DOCUMENT
    if document.is_file():
        return document
    npm = shutil.which("npm")
    if npm is None:
        raise SpecUnavailable(
            f"npm is not installed, so GitHub's OpenAPI description ({OPENAPI_PACKAGE}@{OPENAPI_MAJOR}) cannot be"
            " installed: responses of the local GitHub server are not checked against it"
        )
    with _locked(target.parent / f".openapi-{OPENAPI_MAJOR}.lock"):
        if document.is_file():
            return document
        building = Path(tempfile.mkdtemp(prefix=".installing-openapi-", dir=target.parent))
        try:
            command = [npm, "install", "--no-save", "--no-audit", "--no-fund", "--no-package-lock"]
            command += ["--loglevel=error", "--prefix", str(building), f"{OPENAPI_PACKAGE}@{OPENAPI_MAJOR}"]
            try:
                done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=INSTALL_TIMEOUT)
            except subprocess.TimeoutExpired as exc:
                raise RuntimeError(f"{' '.join(command)} did not finish in {INSTALL_TIMEOUT} s") from exc
            if done.returncode or not (building / "node_modules" / OPENAPI_PACKAGE / DOCUMENT).is_file():
                raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
            shutil.rmtree(target, ignore_errors=True)
            building.rename(target)
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return document


def _json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema 2020-12: ``nullable`` becomes a null type, refs become URNs."""
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = str(node["$ref"])
        if not ref.startswith(SCHEMA_PREFIX) or "/" in ref[len(SCHEMA_PREFIX) :]:
            raise ValueError(f"unexpected reference in GitHub's OpenAPI description: {ref}")
        return {"$ref": SCHEMA_URI + ref[len(SCHEMA_PREFIX) :]}
    schema: dict[str, Any] = {}
    for key, value in node.items():
        if key in _ANNOTATIONS or key.startswith("x-"):
            continue
        if key in ("properties", "patternProperties"):
            schema[key] = {name: _json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            schema[key] = _json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            schema[key] = [_json_schema(sub) for sub in value]
        else:
            schema[key] = value
    return _nullable(schema) if node.get("nullable") is True else schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "type" in schema:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
        return schema
    if any(key in schema for key in ("allOf", "anyOf", "oneOf")):
        return {"anyOf": [{"type": "null"}, schema]}
    return schema


def _template_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts))


# A template's segments as :func:`_matches` compares them: a parameter alone (None: any non-empty segment), a
# literal (itself), or the one kind of segment mixing both (``{base}...{head}``: its regex). Compiling a regex per
# template cost each test process 0.65 s of its 1.1 s of loading the description (811 templates); comparing
# segments answers as those regexes do, as a parameter never spans a "/".
Segment = str | re.Pattern[str] | None


def _segments(template: str) -> tuple[Segment, ...]:
    return tuple(
        part if "{" not in part else None if re.fullmatch(r"\{[^}]+\}", part) else _template_regex(part)
        for part in template.split("/")
    )


def _matches(shape: tuple[Segment, ...], parts: list[str]) -> bool:
    """Whether a concrete path's ``parts`` (as many as ``shape`` has) match a template's :func:`_segments`."""
    for segment, part in zip(shape, parts, strict=True):
        if segment is None:
            if not part:
                return False
        elif isinstance(segment, str):
            if segment != part:
                return False
        elif segment.fullmatch(part) is None:
            return False
    return True


def _refs(node: Any) -> Iterator[str]:
    """The schemas a translated schema refers to (their URNs), at any depth."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(SCHEMA_URI):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _describe(error: ValidationError) -> str:
    deepest = best_match([error])
    where = deepest.json_path
    message = deepest.message
    if len(message) > MAX_MESSAGE:
        message = message[:MAX_MESSAGE] + "…"
    return f"{where}: {message}"


class GitHubOpenAPI:
    """One parsed OpenAPI description; validators are built per operation and status, then reused."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.version = str(document.get("info", {}).get("version", "?"))
        self._schemas: Mapping[str, Any] = document["components"]["schemas"]
        self._responses: Mapping[str, Any] = document["components"].get("responses", {})
        self._paths: Mapping[str, Any] = document["paths"]
        # Literal segments first, so that /pulls/comments wins over /pulls/{pull_number}; grouped by how many
        # segments they have (a parameter never spans a "/"), as only those of a path's count can match it.
        self._patterns: dict[int, list[tuple[tuple[Segment, ...], str]]] = {}
        for template in sorted(map(str, self._paths), key=lambda t: (t.count("{"), -len(t))):
            self._patterns.setdefault(template.count("/"), []).append((_segments(template), template))
        self._templates: dict[str, str | None] = {}  # concrete path -> its template, as found before
        self._registry: Registry[Any] = Registry(retrieve=self._retrieve)  # type: ignore[call-arg]
        self._validators: dict[tuple[str, str, str], Draft202012Validator | None] = {}

    @functools.cache  # noqa: B019 - one description per process, kept for the whole session
    def _retrieve(self, uri: str) -> Resource[Any]:
        if not uri.startswith(SCHEMA_URI):
            raise LookupError(uri)
        name = uri[len(SCHEMA_URI) :]
        return Resource.from_contents(_json_schema(self._schemas[name]), default_specification=DRAFT202012)

    def template(self, path: str) -> str | None:
        """The path template of the description that ``path`` (a template or a concrete path) belongs to."""
        if path in self._paths:
            return path
        if path in self._templates:
            return self._templates[path]
        parts = path.split("/")
        found = next((t for shape, t in self._patterns.get(len(parts) - 1, ()) if _matches(shape, parts)), None)
        if len(self._templates) < 100_000:
            self._templates[path] = found
        return found

    def _response(self, method: str, template: str, status: int) -> tuple[str, Mapping[str, Any] | None]:
        """The response object for ``status`` (a key of ``responses``, or a generic error), and its key."""
        responses = self._paths[template][method]["responses"]
        key = str(status)
        response = responses.get(key) or responses.get("default")
        if response is None:
            if status < 400:
                return key, None
            generic = "validation_failed" if status == 422 else "not_found"
            return key, self._responses[generic]
        if "$ref" in response:
            response = self._responses[response["$ref"].rsplit("/", 1)[1]]
        if status >= 400 and "application/json" not in response.get("content", {}):
            generic = "validation_failed" if status == 422 else "not_found"
            return key, self._responses[generic]
        return key, response

    def _validator(self, method: str, template: str, key: str, schema: Any) -> Draft202012Validator:
        cache_key = (method, template, key)
        validator = self._validators.get(cache_key)
        if validator is None:
            translated = _json_schema(schema)
            validator = Draft202012Validator(translated, registry=self._holding(_refs(translated)))
            self._validators[cache_key] = validator
        return validator

    def _holding(self, uris: Iterable[str]) -> Registry[Any]:
        """The registry, now holding (crawled) every schema ``uris`` reach through references. A validation's
        resolver keeps what it retrieves only until the validation ends: found here, each schema is translated,
        retrieved and crawled once per process rather than once per response (~30 % of the local GitHub's CPU)."""
        pending, reached = list(uris), set()
        while pending:
            uri = pending.pop()
            if uri not in reached:
                reached.add(uri)
                pending.extend(_refs(self._retrieve(uri).contents))
        new = [(uri, self._retrieve(uri)) for uri in reached if uri not in self._registry]
        if new:
            self._registry = self._registry.with_resources(new).crawl()
        return self._registry

    def validate_response(self, method: str, path: str, status: int, body: Any) -> list[str]:
        """Violations of the description by a response (``body``: parsed JSON, None when empty); [] if it conforms."""
        method = method.lower()
        template = self.template(path)
        where = f"{method.upper()} {path} -> {status}"
        if template is None or method not in self._paths[template]:
            return [f"{where}: no such operation in GitHub's REST API description"]
        key, response = self._response(method, template, status)
        if response is None:
            return [f"{where}: status {status} is not documented for {method.upper()} {template}"]
        content = response.get("content", {})
        if "application/json" not in content:
            return [] if body is None else [f"{where}: the description documents no body, this response has one"]
        if body is None:
            return [f"{where}: the description documents a JSON body, this response has none"]
        validator = self._validator(method, template, key, content["application/json"]["schema"])
        errors = sorted(validator.iter_errors(body), key=lambda error: list(error.absolute_path))
        return [f"{where} ({template}) {_describe(error)}" for error in errors[:MAX_VIOLATIONS]]


@functools.cache
def load(path: Path | None = None) -> GitHubOpenAPI:
    """The description at ``path`` (default: :func:`install`'s), parsed once per process."""
    document = json.loads((path or install()).read_text(encoding="utf-8"))
    document["components"].pop("examples", None)
    return GitHubOpenAPI(document)


def validate_response(method: str, path: str, status: int, body: Any) -> list[str]:
    """:meth:`GitHubOpenAPI.validate_response` on the installed description (raises SpecUnavailable without npm)."""
    return load().validate_response(method, path, status, body)
