"""regops: a model registry that lives in git.

    >>> import regops
    >>> registry = regops.Registry.load("registry")
    >>> registry.resolve("sentiment@prod", at=regops.parse_time("3 weeks ago")).version

The names below are the public API (pinned by a test). They are imported on
first use, so ``import regops`` and ``regops --help`` stay fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from regops._version import __version__

_EXPORTS: dict[str, str] = {
    "Registry": "regops.registry",
    "Ref": "regops.registry",
    "VersionRecord": "regops.records",
    "Resolution": "regops.registry",
    "HistoryEntry": "regops.registry",
    "LineageNode": "regops.registry",
    "VersionDiff": "regops.registry",
    "ModelStatus": "regops.registry",
    "parse_ref": "regops.registry",
    "Problem": "regops.kinds",
    "ModelVersion": "regops.files",
    "ModelConfig": "regops.files",
    "DatasetVersion": "regops.files",
    "RegistryConfig": "regops.files",
    "RegopsError": "regops.errors",
    "RegistryNotFoundError": "regops.errors",
    "InvalidRegistryError": "regops.errors",
    "RefError": "regops.errors",
    "ModelNotFoundError": "regops.errors",
    "VersionNotFoundError": "regops.errors",
    "StageEmptyError": "regops.errors",
    "TimeSpecError": "regops.errors",
    "parse_time": "regops.timespec",
    "validate": "regops.api",
}

__all__ = [
    "DatasetVersion",
    "HistoryEntry",
    "InvalidRegistryError",
    "LineageNode",
    "ModelConfig",
    "ModelNotFoundError",
    "ModelStatus",
    "ModelVersion",
    "Problem",
    "Ref",
    "RefError",
    "Registry",
    "RegistryConfig",
    "RegistryNotFoundError",
    "RegopsError",
    "Resolution",
    "StageEmptyError",
    "TimeSpecError",
    "VersionDiff",
    "VersionNotFoundError",
    "VersionRecord",
    "__version__",
    "parse_ref",
    "parse_time",
    "validate",
]

if TYPE_CHECKING:
    from regops.api import validate
    from regops.errors import (
        InvalidRegistryError,
        ModelNotFoundError,
        RefError,
        RegistryNotFoundError,
        RegopsError,
        StageEmptyError,
        TimeSpecError,
        VersionNotFoundError,
    )
    from regops.files import DatasetVersion, ModelConfig, ModelVersion, RegistryConfig
    from regops.kinds import Problem
    from regops.records import VersionRecord
    from regops.registry import (
        HistoryEntry,
        LineageNode,
        ModelStatus,
        Ref,
        Registry,
        Resolution,
        VersionDiff,
        parse_ref,
    )
    from regops.timespec import parse_time


def lazy_exports(module: str, exports: Mapping[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module's ``__getattr__`` (PEP 562) that imports each name of ``exports`` (name -> the module that holds it)
    on first use and keeps it in ``namespace``: the package front here, the api's flows (:mod:`regops.api`)."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        namespace[name] = value
        return value

    return __getattr__


__getattr__ = lazy_exports("regops", _EXPORTS, globals())


def __dir__() -> list[str]:
    return __all__
