"""The loaded registry: an index of its files and the queries people ask of it.

``Registry.load(path)`` reads ``regops.yaml`` and lists the model and dataset
folders; a model's files are read the first time a query needs them (or all
at once by :meth:`Registry.load_all`), so ``regops resolve`` on one model
never pays for the other ninety-nine.

A query on a model whose files do not load raises
:class:`~regops.errors.InvalidRegistryError`: an answer about what is in prod
must not silently skip a file it could not read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from regops import store
from regops.errors import (
    InvalidRegistryError,
    ModelNotFoundError,
    RefError,
    RegistryNotFoundError,
    StageEmptyError,
    VersionNotFoundError,
)
from regops.model import (
    STAGES,
    DatasetVersion,
    ModelConfig,
    ModelVersion,
    Problem,
    RegistryConfig,
    Stage,
    release,
    version_key,
)
from regops.timespec import as_utc

__all__ = [
    "HOLDER_STAGES",
    "DatasetRecord",
    "HistoryEntry",
    "Interval",
    "LineageNode",
    "ModelEntry",
    "ModelStatus",
    "Ref",
    "Registry",
    "Resolution",
    "ScoreDelta",
    "VersionDiff",
    "VersionRecord",
    "parse_ref",
]

HOLDER_STAGES: Final[tuple[Stage, ...]] = ("dev", "staging", "prod")
CONFIG_FILE: Final = "regops.yaml"
MODEL_FILE: Final = "model.yaml"
T = TypeVar("T", bound=BaseModel)


# --- references --------------------------------------------------------------


@dataclass(frozen=True)
class Ref:
    """``MODEL``, ``MODEL@VERSION`` or ``MODEL@STAGE``."""

    model: str
    version: str | None = None
    stage: Stage | None = None

    def __str__(self) -> str:
        tail = self.version or self.stage
        return f"{self.model}@{tail}" if tail else self.model


def parse_ref(text: str, *, default_model: str | None = None) -> Ref:
    model, sep, tail = text.partition("@")
    if not sep and default_model and re.match(r"^\d", text):
        model, tail = default_model, text
    if not model or (sep and not tail):
        raise RefError(text, f"cannot read {text!r}: expected MODEL, MODEL@VERSION or MODEL@STAGE")
    if not tail:
        return Ref(model)
    if tail in STAGES:
        return Ref(model, stage=tail)
    return Ref(model, version=tail)


# --- what the files hold ------------------------------------------------------


@dataclass(frozen=True)
class VersionRecord:
    """A version file as loaded: the data and where it came from."""

    data: ModelVersion
    path: Path

    @property
    def model(self) -> str:
        return self.data.model

    @property
    def version(self) -> str:
        return self.data.version


@dataclass(frozen=True)
class DatasetRecord:
    data: DatasetVersion
    path: Path


@dataclass(frozen=True)
class Interval:
    """A version held ``stage`` from ``start`` until ``end`` (None: still holds it)."""

    version: str
    stage: Stage
    start: datetime
    end: datetime | None

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)


@dataclass
class ModelEntry:
    """One model folder, loaded."""

    name: str
    folder: Path
    config: ModelConfig | None
    versions: dict[str, VersionRecord]
    problems: list[Problem]
    # Version names of files that exist but did not load (so "parent missing" is not claimed).
    unreadable: set[str] = field(default_factory=set)
    # (path, version) of files that claim a version another file already claims.
    duplicates: list[tuple[Path, str]] = field(default_factory=list)

    @cached_property
    def ordered(self) -> list[VersionRecord]:
        return sorted(self.versions.values(), key=lambda r: version_key(r.version))

    @cached_property
    def intervals(self) -> list[Interval]:
        spans: list[Interval] = []
        for record in self.versions.values():
            steps: list[tuple[datetime, Stage]] = [(record.data.created_at, "candidate")]
            steps += [(t.at, t.to) for t in record.data.transitions]
            for (start, stage), nxt in zip(steps, [*steps[1:], None], strict=True):
                spans.append(Interval(record.version, stage, start, nxt[0] if nxt else None))
        return sorted(spans, key=lambda i: (i.start, version_key(i.version)))


# --- answers -------------------------------------------------------------------


@dataclass(frozen=True)
class Resolution:
    model: str
    stage: Stage
    at: datetime | None
    version: str
    since: datetime
    until: datetime | None
    storage: dict[str, Any]
    path: str


@dataclass(frozen=True)
class HistoryEntry:
    model: str
    version: str
    at: datetime
    from_: Stage | None
    to: Stage
    by: str
    pr: int | None = None
    approved_by: tuple[str, ...] = ()
    notes: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class LineageNode:
    """One ancestor: a registered version, or an external base (``ref`` is hf://…)."""

    ref: str
    depth: int
    dataset: str | None = None
    dataset_hash: str | None = None
    eval_dataset: str | None = None
    external: bool = False
    missing: bool = False
    parent: str | None = None


@dataclass(frozen=True)
class ScoreDelta:
    metric: str
    a: float | None
    b: float | None
    delta: float | None
    goal: Literal["max", "min"] | None
    better: bool | None  # is b better than a? None: no goal known, or no change


@dataclass(frozen=True)
class VersionDiff:
    a: str
    b: str
    primary_metric: str
    scores: list[ScoreDelta]
    params_added: dict[str, Any]
    params_removed: dict[str, Any]
    params_changed: dict[str, tuple[Any, Any]]
    dataset: tuple[str, str]
    dataset_hash: tuple[str, str]
    eval_dataset: tuple[str | None, str | None]
    parent: tuple[str | None, str | None]


@dataclass(frozen=True)
class StageSummary:
    version: str
    score: float | None


@dataclass(frozen=True)
class ModelStatus:
    model: str
    primary_metric: str
    dev: StageSummary | None
    staging: StageSummary | None
    prod: StageSummary | None
    prod_since: datetime | None
    candidates: int
    versions: int


# --- the registry ------------------------------------------------------------------


class Registry:
    """A registry folder (``regops.yaml``, ``models/``, ``datasets/``), loaded on demand."""

    def __init__(self, root: Path, config: RegistryConfig, problems: list[Problem]) -> None:
        self.root = root
        self.config = config
        self._problems = problems
        self._models: dict[str, ModelEntry] = {}
        self._datasets: dict[tuple[str, str], DatasetRecord] | None = None
        self._dataset_problems: list[Problem] = []
        self._extra_files: list[Path] = []

    # loading

    @classmethod
    def load(cls, path: str | Path = "registry") -> Registry:
        """Open the registry at ``path`` (the registry folder, or a repository that has ``registry/``)."""
        root = _find_root(Path(path))
        parsed = store.load_many([root / CONFIG_FILE], base=root.parent)[root / CONFIG_FILE]
        config, problems = _typed(RegistryConfig, parsed, root / CONFIG_FILE, root.parent)
        return cls(root, config or RegistryConfig(), problems)

    def display(self, path: Path) -> str:
        """A path as problems show it: relative to the folder that holds the registry."""
        try:
            return path.relative_to(self.root.parent).as_posix()
        except ValueError:
            return path.as_posix()

    def load_all(self) -> None:
        """Read every file now, in one batch (parallel when cold)."""
        pending = [name for name in self.model_names() if name not in self._models]
        files = [f for name in pending for f in _yaml_files(self.root / "models" / name)]
        if self._datasets is None:
            files += self._dataset_files()
        parsed = store.load_many(files, base=self.root.parent)
        for name in pending:
            self._models[name] = self._build_model(name, parsed)
        if self._datasets is None:
            self._build_datasets(parsed)

    def _entry(self, name: str) -> ModelEntry:
        if name not in self._models:
            if name not in self.model_names():
                raise ModelNotFoundError(name, self.model_names())
            files = _yaml_files(self.root / "models" / name)
            self._models[name] = self._build_model(name, store.load_many(files, base=self.root.parent))
        return self._models[name]

    def _build_model(self, name: str, parsed: dict[Path, store.Parsed]) -> ModelEntry:
        folder = self.root / "models" / name
        entry = ModelEntry(name, folder, None, {}, [])
        claimed: set[str] = set()
        for path in _yaml_files(folder):
            if path.name == MODEL_FILE:
                entry.config, problems = _typed(ModelConfig, parsed[path], path, self.root.parent)
            else:
                record, problems = _typed(ModelVersion, parsed[path], path, self.root.parent)
                if record is None:
                    entry.unreadable.add(path.stem)
                elif release(record.version) in claimed:
                    entry.duplicates.append((path, record.version))
                    entry.unreadable.update({path.stem, record.version})
                else:
                    claimed.add(release(record.version))
                    entry.versions[record.version] = VersionRecord(record, path)
            entry.problems += problems
        return entry

    def _dataset_files(self) -> list[Path]:
        folder = self.root / "datasets"
        return [f for d in _subfolders(folder) for f in _yaml_files(d)]

    def _build_datasets(self, parsed: dict[Path, store.Parsed]) -> None:
        self._datasets = {}
        for path in self._dataset_files():
            record, problems = _typed(DatasetVersion, parsed[path], path, self.root.parent)
            self._dataset_problems += problems
            if record is not None:
                self._datasets.setdefault((record.name, record.version), DatasetRecord(record, path))

    # what is there

    def model_names(self) -> list[str]:
        return [d.name for d in _subfolders(self.root / "models")]

    def model_entry(self, name: str, *, strict: bool = True) -> ModelEntry:
        """A model's loaded files; with ``strict``, raises if any of them has problems."""
        entry = self._entry(name)
        if strict and entry.problems:
            raise InvalidRegistryError(entry.problems)
        return entry

    def model(self, name: str) -> ModelConfig:
        config = self.model_entry(name).config
        if config is None:
            problem = Problem(self.display(self.root / "models" / name / MODEL_FILE), message="file is missing")
            raise InvalidRegistryError([problem])
        return config

    def versions(self, name: str) -> list[VersionRecord]:
        """A model's versions in SemVer order."""
        return self.model_entry(name).ordered

    def version(self, name: str, version: str) -> VersionRecord:
        entry = self.model_entry(name)
        if version not in entry.versions:
            raise VersionNotFoundError(name, version)
        return entry.versions[version]

    def datasets(self) -> dict[tuple[str, str], DatasetRecord]:
        if self._datasets is None:
            files = self._dataset_files()
            self._build_datasets(store.load_many(files, base=self.root.parent))
        assert self._datasets is not None
        return self._datasets

    def dataset(self, ref: str) -> DatasetRecord | None:
        name, _, version = ref.partition("@")
        return self.datasets().get((name, version))

    def load_problems(self) -> list[Problem]:
        """Problems met while reading files (syntax and schema); loads everything."""
        self.load_all()
        self.datasets()
        problems = list(self._problems) + self._dataset_problems
        for entry in self._models.values():
            problems += entry.problems
        return problems

    # queries

    def get(self, ref: str | Ref, *, at: datetime | None = None) -> VersionRecord:
        """The version a reference names: ``MODEL@VERSION``, or ``MODEL@STAGE`` now or ``at``."""
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        if parsed.version:
            return self.version(parsed.model, parsed.version)
        if parsed.stage is None:
            raise RefError(str(parsed), f"{parsed} names a model; add @VERSION or @STAGE")
        return self.version(parsed.model, self.resolve(parsed, at=at).version)

    def holder(self, model: str, stage: Stage, *, at: datetime | None = None) -> Interval | None:
        """Who held ``stage`` at ``at`` (default: now), from the transition records."""
        if stage not in HOLDER_STAGES:
            raise RefError(f"{model}@{stage}", f"many versions can be {stage}; name a version instead")
        at = as_utc(at) if at else None
        spans = [i for i in self.model_entry(model).intervals if i.stage == stage]
        found = [i for i in spans if i.covers(at)] if at else [i for i in spans if i.end is None]
        return found[-1] if found else None

    def resolve(self, ref: str | Ref, *, at: datetime | None = None) -> Resolution:
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        if parsed.stage is None:
            raise RefError(str(parsed), f"resolve takes MODEL@STAGE (dev, staging or prod), not {parsed}")
        span = self.holder(parsed.model, parsed.stage, at=at)
        if span is None:
            raise StageEmptyError(parsed.model, parsed.stage, at.isoformat() if at else None)
        record = self.version(parsed.model, span.version)
        storage = record.data.artifacts.storage.model_dump(mode="json")
        return Resolution(
            parsed.model,
            parsed.stage,
            at,
            span.version,
            span.start,
            span.end,
            storage,
            self.display(record.path),
        )

    def history(self, model: str) -> list[HistoryEntry]:
        """Every registration and transition of a model, oldest first."""
        rows: list[HistoryEntry] = []
        for record in self.versions(model):
            data = record.data
            rows.append(HistoryEntry(model, data.version, data.created_at, None, "candidate", data.created_by))
            rows += [
                HistoryEntry(
                    model,
                    data.version,
                    t.at,
                    t.from_,
                    t.to,
                    t.by,
                    t.pr,
                    tuple(t.approved_by or ()),
                    t.notes,
                    t.reason,
                )
                for t in data.transitions
            ]
        return sorted(rows, key=lambda r: (r.at, version_key(r.version)))

    def lineage(self, ref: str | Ref, *, at: datetime | None = None) -> list[LineageNode]:
        """The version and its ancestors, nearest first, across models and to external bases."""
        record: VersionRecord | None = self.get(ref, at=at)
        nodes: list[LineageNode] = []
        seen: set[str] = set()
        while record is not None:
            name = f"{record.model}@{record.version}"
            if name in seen:
                break
            seen.add(name)
            data = record.data
            parent = self.parent_ref(data)
            nodes.append(
                LineageNode(
                    name,
                    len(nodes),
                    data.training.dataset,
                    data.training.dataset_hash,
                    data.evals.dataset,
                    parent=parent,
                )
            )
            record = None
            if parent is None:
                break
            if parent.startswith("hf://"):
                nodes.append(LineageNode(parent, len(nodes), external=True))
                break
            record = self._find(parent)
            if record is None:
                nodes.append(LineageNode(parent, len(nodes), missing=True))
        return nodes

    def _find(self, ref: str) -> VersionRecord | None:
        model, _, version = ref.partition("@")
        if model not in self.model_names():
            return None
        return self.model_entry(model).versions.get(version)

    @staticmethod
    def parent_ref(data: ModelVersion) -> str | None:
        """The parent as MODEL@VERSION (or hf://…), whichever way the file spells it."""
        parent = data.parent
        if parent is None or "@" in parent:
            return parent
        return f"{data.model}@{parent}"

    def diff(self, a: str | Ref, b: str | Ref, *, at: datetime | None = None) -> VersionDiff:
        """How version ``b`` differs from ``a``: scores, hyperparameters, data, parent."""
        left, right = self.get(a, at=at), self.get(b)
        goals = self._goals(right.model)
        primary = self.model(right.model).primary_metric.name
        names = sorted(set(left.data.evals.scores) | set(right.data.evals.scores), key=lambda n: (n != primary, n))
        scores = [
            _score_delta(n, left.data.evals.scores.get(n), right.data.evals.scores.get(n), goals.get(n)) for n in names
        ]
        pa, pb = left.data.hyperparameters, right.data.hyperparameters
        return VersionDiff(
            a=f"{left.model}@{left.version}",
            b=f"{right.model}@{right.version}",
            primary_metric=primary,
            scores=scores,
            params_added={k: pb[k] for k in sorted(pb.keys() - pa.keys())},
            params_removed={k: pa[k] for k in sorted(pa.keys() - pb.keys())},
            params_changed={k: (pa[k], pb[k]) for k in sorted(pa.keys() & pb.keys()) if pa[k] != pb[k]},
            dataset=(left.data.training.dataset, right.data.training.dataset),
            dataset_hash=(left.data.training.dataset_hash, right.data.training.dataset_hash),
            eval_dataset=(left.data.evals.dataset, right.data.evals.dataset),
            parent=(self.parent_ref(left.data), self.parent_ref(right.data)),
        )

    def _goals(self, model: str) -> dict[str, Literal["max", "min"]]:
        config = self.model(model)
        goals = {g.name: g.goal for g in config.guard_metrics}
        goals[config.primary_metric.name] = config.primary_metric.goal
        return goals

    def status(self) -> list[ModelStatus]:
        """One row per model: who holds dev, staging and prod, and since when prod."""
        self.load_all()
        return [self._status(name) for name in self.model_names()]

    def _status(self, name: str) -> ModelStatus:
        metric = self.model(name).primary_metric.name
        entry = self.model_entry(name)
        holders = {stage: self.holder(name, stage) for stage in HOLDER_STAGES}

        def summary(stage: Stage) -> StageSummary | None:
            span = holders[stage]
            if span is None:
                return None
            return StageSummary(span.version, entry.versions[span.version].data.evals.scores.get(metric))

        prod = holders["prod"]
        return ModelStatus(
            model=name,
            primary_metric=metric,
            dev=summary("dev"),
            staging=summary("staging"),
            prod=summary("prod"),
            prod_since=prod.start if prod else None,
            candidates=sum(1 for r in entry.versions.values() if r.data.stage == "candidate"),
            versions=len(entry.versions),
        )

    def iter_versions(self) -> Iterator[VersionRecord]:
        """Every loaded version of every model (loads everything)."""
        self.load_all()
        for entry in self._models.values():
            yield from entry.ordered

    def entries(self) -> list[ModelEntry]:
        self.load_all()
        return [self._models[name] for name in self.model_names()]


# --- helpers --------------------------------------------------------------------


def _find_root(path: Path) -> Path:
    for candidate in (path, path / "registry"):
        if (candidate / CONFIG_FILE).is_file():
            return candidate.resolve()
    raise RegistryNotFoundError(path)


def _subfolders(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except FileNotFoundError:
        return []


def _yaml_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    except FileNotFoundError:
        return []


def _score_delta(name: str, a: float | None, b: float | None, goal: Literal["max", "min"] | None) -> ScoreDelta:
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)):
        return ScoreDelta(name, a, b, None, goal, None)
    delta = b - a
    better = None if goal is None or delta == 0 else (delta > 0) == (goal == "max")
    return ScoreDelta(name, a, b, delta, goal, better)


def _typed(kind: type[T], parsed: store.Parsed, path: Path, base: Path) -> tuple[T | None, list[Problem]]:
    """Validate parsed data against its pydantic model; problems carry the field, not yet the line."""
    display = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.as_posix()
    if parsed.data is None:
        assert parsed.problem is not None
        return None, [parsed.problem]
    try:
        return kind.model_validate(parsed.data), []
    except ValidationError as e:
        return None, [Problem(display, field=field_name(err["loc"]), message=_message(err)) for err in e.errors()]


def field_name(loc: Sequence[str | int]) -> str:
    """('transitions', 2, 'at') -> 'transitions[2].at'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def field_parts(name: str) -> list[str | int]:
    """The inverse of :func:`field_name`."""
    return [int(p[1:-1]) if p.startswith("[") else p for p in re.findall(r"\[\d+\]|[^.\[\]]+", name)]


_TYPE_NAMES: Final = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "dict_type": "a mapping",
    "list_type": "a list",
    "model_type": "a mapping",
}


def _message(error: Any) -> str:
    kind, value = error["type"], error.get("input")
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field (not in the schema: check the spelling)"
    if kind in _TYPE_NAMES:
        shown = f"{type(value).__name__} {value!r}" if value is not None else "null"
        hint = " (quote it to make it a string)" if kind == "string_type" and value is not None else ""
        return f"expected {_TYPE_NAMES[kind]}, found {shown}{hint}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "literal_error":
        return f"{message[0].lower()}{message[1:]}, found {value!r}"
    return message[0].lower() + message[1:] if message else kind
