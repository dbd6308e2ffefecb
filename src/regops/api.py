"""The library facade: one function per CLI verb, keyword arguments, no printing.

Each function opens the registry (a path, or an already loaded
:class:`~regops.registry.Registry`) and returns values; ``cli.py`` renders them.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from regops.kinds import Problem
from regops.registry import (
    HistoryEntry,
    LineageNode,
    ModelEntry,
    ModelStatus,
    Registry,
    Resolution,
    VersionDiff,
    VersionRecord,
    parse_ref,
)
from regops.timespec import parse_time

__all__ = [
    "diff",
    "export_schemas",
    "history",
    "lineage",
    "open_registry",
    "resolve",
    "show",
    "show_model",
    "status",
    "validate",
]

RegistryArg = str | Path | Registry
TimeArg = str | datetime | None


def open_registry(registry: RegistryArg = "registry") -> Registry:
    return registry if isinstance(registry, Registry) else Registry.load(registry)


def _moment(at: TimeArg) -> datetime | None:
    return parse_time(at) if isinstance(at, str) else at


def validate(*, registry: RegistryArg = "registry", now: datetime | None = None) -> list[Problem]:
    """Every problem in the registry, sorted by file, line and column; empty when clean."""
    from regops import policy

    return policy.check(open_registry(registry), now=now)


def status(*, registry: RegistryArg = "registry") -> list[ModelStatus]:
    return open_registry(registry).status()


def show(ref: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> VersionRecord:
    """One version: ``MODEL@VERSION``, or ``MODEL@STAGE`` now or ``at``."""
    return open_registry(registry).get(ref, at=_moment(at))


def show_model(model: str, *, registry: RegistryArg = "registry") -> ModelEntry:
    opened = open_registry(registry)
    opened.model(model)
    return opened.model_entry(model)


def history(model: str, *, registry: RegistryArg = "registry") -> list[HistoryEntry]:
    return open_registry(registry).history(parse_ref(model).model)


def resolve(ref: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> Resolution:
    """The version that held ``MODEL@STAGE`` at ``at`` (default: now), from the transitions."""
    return open_registry(registry).resolve(ref, at=_moment(at))


def lineage(ref: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> list[LineageNode]:
    return open_registry(registry).lineage(ref, at=_moment(at))


def diff(a: str, b: str, *, registry: RegistryArg = "registry", at: TimeArg = None) -> VersionDiff:
    """How ``b`` differs from ``a``; ``at`` applies to ``a`` (e.g. prod three weeks ago vs prod now)."""
    return open_registry(registry).diff(a, b, at=_moment(at))


def export_schemas(dest: str | Path = "schemas") -> list[Path]:
    """Write ``schemas/*.json`` from the pydantic models; returns the files that changed."""
    from regops import schema

    return schema.export(Path(dest))
