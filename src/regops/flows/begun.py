"""What a verb begins before its own modules are imported: git's comparison of the work tree with ``--base``
(:func:`comparing`), so git's stat of every file runs beside the interpreter's imports. Kept this small on
purpose: the command imports it right after parsing its arguments."""

from __future__ import annotations

import contextlib
from pathlib import Path

from regops.adapters import git

__all__ = ["comparing"]


def comparing(registry: Path, base: str) -> contextlib.AbstractContextManager[None]:
    """git's comparison of ``registry`` (a registry folder: ``regops.yaml`` and ``models/``) with ``base``, begun
    now and answered to the check that asks for exactly this repository, ref and folder inside the block; stopped
    unused otherwise. A folder no path can name begins nothing (the verb says what is wrong with it)."""
    try:
        folder = registry.resolve()
    except (OSError, RuntimeError, ValueError):
        return contextlib.nullcontext()
    return git.comparing(folder.parent, base, folder.name)
