"""What the files of a registry hold, as loaded: one record class per file kind.

A record wraps the data of a file that passed its schema (``raw``) and reads its fields lazily;
``.data`` gives the pydantic model (``files.py``) for callers that want every field typed.
:class:`ModelEntry` is one model folder with its versions. ``registry.py`` loads them and answers
queries over them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from itertools import starmap
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from regops.kinds import Problem, Stage, version_key

if TYPE_CHECKING:
    from regops.files import DatasetVersion, ModelConfig, ModelVersion, RegistryConfig

__all__ = [
    "ConfigRecord",
    "DatasetRecord",
    "Interval",
    "ModelEntry",
    "ModelRecord",
    "StageRule",
    "Step",
    "VersionRecord",
    "comparable",
]


def _typed(kind: str, raw: dict[str, Any]) -> Any:
    """The pydantic model of already-checked data, for callers that want every field typed."""
    # Imported here: the pydantic models (~0.3 s), which the read verbs never build.
    from regops.schema import model_class

    return model_class(kind).model_validate(raw)


def _time(text: str) -> datetime:
    # Only called on data that passed the schema, whose pattern fromisoformat reads.
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class Step:
    """One transition of a version."""

    from_: Stage
    to: Stage
    at: datetime
    by: str
    pr: int | None = None
    approved_by: tuple[str, ...] = ()
    notes: str | None = None
    reason: str | None = None
    evidence: tuple[dict[str, Any], ...] = ()  # auto-promote's comparison, metric by metric (files.Measure)


@dataclass(frozen=True, eq=False)
class VersionRecord:
    """A version file as loaded: its data (checked against the schema) and where it came from.

    The accessors read the plain data directly, so queries never need pydantic;
    :attr:`data` builds the full pydantic model when a caller wants every field typed.
    """

    raw: dict[str, Any]
    path: Path

    @property
    def model(self) -> str:
        return cast(str, self.raw["model"])

    @property
    def version(self) -> str:
        return cast(str, self.raw["version"])

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"

    @property
    def stage(self) -> Stage:
        return cast(Stage, self.raw["stage"])

    @cached_property
    def created_at(self) -> datetime:
        return _time(self.raw["created_at"])

    @property
    def created_by(self) -> str:
        return cast(str, self.raw["created_by"])

    @property
    def parent(self) -> str | None:
        """The parent as MODEL@VERSION (or hf://…), whichever way the file spells it."""
        parent = cast("str | None", self.raw.get("parent"))
        if parent is None or "@" in parent:
            return parent
        return f"{self.model}@{parent}"

    @property
    def dataset(self) -> str:
        return cast(str, self.raw["training"]["dataset"])

    @property
    def dataset_hash(self) -> str:
        return cast(str, self.raw["training"]["dataset_hash"])

    @property
    def eval_dataset(self) -> str | None:
        return cast("str | None", self.raw["evals"].get("dataset"))

    @property
    def scores(self) -> dict[str, float]:
        return cast("dict[str, float]", self.raw["evals"]["scores"])

    @property
    def hyperparameters(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self.raw.get("hyperparameters", {}))

    @property
    def storage(self) -> dict[str, Any]:
        storage = dict(self.raw["artifacts"]["storage"])
        storage.setdefault("tier", "hot")
        return storage

    @property
    def artifact_paths(self) -> list[str]:
        return [f["path"] for f in self.raw["artifacts"]["files"]]

    @property
    def canary(self) -> dict[str, Any] | None:
        return cast("dict[str, Any] | None", self.raw.get("canary"))

    @cached_property
    def steps(self) -> tuple[Step, ...]:
        return tuple(
            Step(
                t["from"],
                t["to"],
                _time(t["at"]),
                t["by"],
                t.get("pr"),
                tuple(t.get("approved_by") or ()),
                t.get("notes"),
                t.get("reason"),
                tuple(t.get("evidence") or ()),
            )
            for t in self.raw.get("transitions", ())
        )

    @cached_property
    def data(self) -> ModelVersion:
        return cast("ModelVersion", _typed("version", self.raw))


def comparable(a: VersionRecord, b: VersionRecord) -> bool:
    """Whether the scores of ``a`` and ``b`` may be compared: both measured on the same eval dataset version.

    The one rule for ``diff``, the review page and auto-promote. Two versions that name no eval set
    (registered without ``--eval-dataset``) compare as they always did; one named and one not never do."""
    return a.eval_dataset == b.eval_dataset


@dataclass(frozen=True, eq=False)
class ModelRecord:
    """A model.yaml as loaded."""

    raw: dict[str, Any]
    path: Path

    @property
    def name(self) -> str:
        return cast(str, self.raw["name"])

    @property
    def primary_metric(self) -> str:
        return cast(str, self.raw["primary_metric"]["name"])

    @property
    def goals(self) -> dict[str, Literal["max", "min"]]:
        """The goal of every metric the model names: guard metrics and the primary one."""
        goals = {g["name"]: g["goal"] for g in self.raw.get("guard_metrics", ())}
        goals[self.primary_metric] = self.raw["primary_metric"]["goal"]
        return goals

    @cached_property
    def data(self) -> ModelConfig:
        return cast("ModelConfig", _typed("model", self.raw))


@dataclass(frozen=True)
class StageRule:
    """Who may move a version into a stage, and from where (``stages.<stage>`` in regops.yaml)."""

    from_: tuple[Stage, ...]
    approvals: int
    approvers: tuple[str, ...]
    bots: bool
    require_canary: bool


@dataclass(frozen=True, eq=False)
class ConfigRecord:
    """regops.yaml as loaded, every default filled in (the loader keeps it that way)."""

    raw: dict[str, Any]

    @cached_property
    def stages(self) -> dict[Stage, StageRule]:
        return {
            stage: StageRule(
                tuple(rule["from"]), rule["approvals"], tuple(rule["approvers"]), rule["bots"], rule["require_canary"]
            )
            for stage, rule in self.raw["stages"].items()
        }

    @property
    def bots(self) -> list[str]:
        return cast("list[str]", self.raw["bots"])

    def is_bot(self, login: str) -> bool:
        """A bot identity: listed under ``bots`` in regops.yaml, or a GitHub App login (``…[bot]``).

        The one answer to "is this a bot" for every verb: promote, validate --base, pr check and pr stamp."""
        return login in self.raw["bots"] or login.endswith("[bot]")

    @property
    def admins(self) -> tuple[str, ...]:
        return tuple(self.raw.get("admins", ()))

    @property
    def protected_branches(self) -> tuple[str, ...]:
        return tuple(self.raw.get("protected_branches", ()))

    @property
    def protected_paths(self) -> tuple[str, ...]:
        return tuple(self.raw.get("protected_paths", ()))

    @property
    def unjudged_paths(self) -> tuple[str, ...]:
        return tuple(self.raw.get("unjudged_paths", ()))

    @property
    def strictest(self) -> int:
        """The most approvals any stage asks for: what a change to the policy itself takes (never fewer than one)."""
        return max([1, *(rule.approvals for rule in self.stages.values())])

    @property
    def canary_traffic_percent(self) -> float:
        return cast(float, self.raw["canary"]["traffic_percent"])

    @property
    def storage(self) -> dict[str, Any]:
        return cast("dict[str, Any]", self.raw["storage"])

    @property
    def cold_storage(self) -> dict[str, Any] | None:
        return cast("dict[str, Any] | None", self.raw.get("cold_storage"))

    @property
    def signing(self) -> dict[str, Any] | None:
        """``signing:`` (files.SigningPolicy), or None when regops.yaml asks for no signatures."""
        return cast("dict[str, Any] | None", self.raw.get("signing"))

    @cached_property
    def data(self) -> RegistryConfig:
        return cast("RegistryConfig", _typed("config", self.raw))


@dataclass(frozen=True, eq=False)
class DatasetRecord:
    raw: dict[str, Any]
    path: Path

    @property
    def name(self) -> str:
        return cast(str, self.raw["name"])

    @property
    def version(self) -> str:
        return cast(str, self.raw["version"])

    @property
    def hash(self) -> str:
        return cast(str, self.raw["hash"])

    @cached_property
    def created_at(self) -> datetime:
        return _time(self.raw["created_at"])

    @cached_property
    def data(self) -> DatasetVersion:
        return cast("DatasetVersion", _typed("dataset", self.raw))


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
    config: ModelRecord | None
    versions: dict[str, VersionRecord]
    problems: list[Problem]
    # Version names of files that exist but did not load (so "parent missing" is not claimed).
    unreadable: set[str] = field(default_factory=set)
    # (path, version) of files that claim a version another file already claims.
    duplicates: list[tuple[Path, str]] = field(default_factory=list)

    @cached_property
    def ordered(self) -> list[VersionRecord]:
        return sorted(self.versions.values(), key=lambda r: version_key(r.version))

    def spans(self) -> Iterator[tuple[str, Stage, datetime, datetime | None]]:
        """``(version, stage, start, end)`` for every stage each version held (``end`` None: it holds it still),
        version by version in SemVer order: the one reading of transitions as time, for :attr:`intervals` and
        for the rules that check a history as a whole (plain tuples: validate reads every version's)."""
        for record in self.ordered:
            version, start = record.version, record.created_at
            stage: Stage = "candidate"
            for step in record.steps:
                yield version, stage, start, step.at
                start, stage = step.at, step.to
            yield version, stage, start, None

    @cached_property
    def intervals(self) -> list[Interval]:
        """Every stage each version held; by start, then version (SemVer order), then the version's own order."""
        # A stable sort by start alone: spans come in SemVer order, so ties need no version key per span.
        return sorted(starmap(Interval, self.spans()), key=attrgetter("start"))

    @cached_property
    def intervals_by_stage(self) -> dict[Stage, list[Interval]]:
        """:attr:`intervals` of each stage, in the same order (who held a stage when reads only that stage's)."""
        grouped: dict[Stage, list[Interval]] = {}
        for interval in self.intervals:
            grouped.setdefault(interval.stage, []).append(interval)
        return grouped
