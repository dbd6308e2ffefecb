"""The ``regops`` command's entry point: git begins looking at the model folders before regops' own imports.

``regops status`` and ``regops history`` key their answers by git's look at every model folder
(:func:`regops.freshness.looking`): git's ``lstat`` of every file, ~0.2 s at 100,000 versions, is on the critical
path. :mod:`regops.cli` (argparse, the parser's tables, :mod:`regops.kinds` and its dataclasses) takes ~0.07 s to
import, so the command guesses the verb and ``--registry`` from the command line as written and begins git's look
first. A guess is only that: the look answers the first ask of that folder within the command and is stopped when
the command ends; a wrong guess (an abbreviated flag, a verb that fails to parse) costs git's time only, and the
verb begins its own look (:func:`regops.cli.main`). ``regops validate --base REF`` begins git's comparison with
``REF`` the same way (:mod:`regops.flows.begun`).
"""

from __future__ import annotations

import contextlib
import gc
import sys
from collections.abc import Sequence

__all__ = ["run"]

# The verbs whose answers git's look keys (regops.cli._LOOKERS names their functions).
_LOOKERS = frozenset({"status", "history"})


def run() -> int:
    """The ``regops`` command: :func:`regops.cli.run`, git's look begun before it is imported."""
    if _verb(sys.argv[1:]) in _LOOKERS:
        # What status and history make (~50,000 containers at 100,000 versions: modules, entries, rows) lives
        # until the command ends, and they make no cycles: the collector's ~80 passes over it found nothing and
        # cost ~0.015 s of a 0.35 s history. The process ends soon after; the OS frees its memory.
        gc.disable()
    with _looking(sys.argv[1:]):
        from regops.cli import run as command  # here: git's look runs beside this import (module docs)

        return command()


def _verb(argv: Sequence[str]) -> str | None:
    """The verb as written: the first word not a flag."""
    return next((word for word in argv if not word.startswith("-")), None)


def _looking(argv: Sequence[str]) -> contextlib.AbstractContextManager[None]:
    verb = _verb(argv)
    base = _value(argv, "--base") if verb == "validate" else None
    if verb not in _LOOKERS and base is None:
        return contextlib.nullcontext()
    from regops import freshness  # here: its subprocess import is neither --help's nor the other verbs'

    models = freshness.models_folder(_value(argv, "--registry"))
    if base is None:
        return freshness.looking(models)
    from regops.flows import begun  # here, as freshness above

    return begun.comparing(models.parent, base)


def _value(argv: Sequence[str], option: str) -> str | None:
    """``option``'s value as written (the last one, as argparse keeps it); None when not given that way."""
    found = None
    for flag, value in zip(argv, [*argv[1:], None], strict=True):
        if flag == option:
            found = value
        elif flag.startswith(f"{option}="):
            found = flag.partition("=")[2]
    return found
