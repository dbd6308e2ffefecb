"""Finding and opening a registry: what every verb does first, and all a read verb needs of the workspace.

Kept apart from :mod:`regops.workspace` (storage, the lock, git, who is acting) so that the read verbs
(``status``, ``history``, ``show``) import only the registry and its summaries: the workspace's imports
(lifecycle, signing, the weights stores, subprocess) are a third of their start-up (benchmarks/audit.py).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from regops.errors import RegistryNotFoundError
from regops.registry import CONFIG_FILE, Registry
from regops.timespec import parse_time

__all__ = ["RegistryArg", "TimeArg", "find_registry", "open_registry", "when"]

RegistryArg = str | Path | Registry | None
TimeArg = str | datetime | None


def open_registry(registry: RegistryArg = "registry") -> Registry:
    """``registry`` opened: a path (the registry folder, or a repository with ``registry/``), or None to find it
    from the current folder as git finds a repository (:func:`find_registry`)."""
    if isinstance(registry, Registry):
        return registry
    return Registry.load(find_registry() if registry is None else registry)


def find_registry(start: Path | None = None) -> Path:
    """The registry that ``start`` (default: the current folder) is in: the nearest folder, ``start`` or above it,
    that holds ``regops.yaml`` or ``registry/regops.yaml``. The walk stops at the top of the git repository
    holding ``start``, so a registry outside that repository is never picked up."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        for candidate in (folder, folder / "registry"):
            if (candidate / CONFIG_FILE).is_file():
                return candidate
        if (folder / ".git").exists():
            break
    raise RegistryNotFoundError(here, searched=True)


def when(at: TimeArg) -> datetime | None:
    return parse_time(at) if isinstance(at, str) else at
