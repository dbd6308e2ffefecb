"""``regops``: argparse, one function per verb, exit codes.

0 ok, 1 problems found (or a registry error), 2 usage, 3 a bug in regops, 130 Ctrl-C. The parser
(:mod:`regops.cli.parser`) names each verb's function; the verbs live by group: :mod:`~regops.cli.reads`,
:mod:`~regops.cli.registry`, :mod:`~regops.cli.pulls` and :mod:`~regops.cli.setup`, on what they share
(:mod:`~regops.cli.common`). A verb's module is imported only when it runs, so ``regops --help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import gc
import importlib
import json
import sys
import traceback
from collections.abc import Sequence
from itertools import pairwise
from typing import Final

from regops.cli.common import EXIT_BUG, EXIT_INTERRUPTED, EXIT_PROBLEMS, EXIT_USAGE, UsageError, Verb
from regops.cli.parser import build_parser
from regops.errors import RegopsError, TimeSpecError

__all__ = ["ERROR_CODES", "build_parser", "error_code", "main", "run"]


# The stable ``code`` of an error under --json: the nearest of these classes in the error's MRO names it.
ERROR_CODES = {
    "RegistryNotFoundError": "registry-not-found",
    "InvalidRegistryError": "invalid-registry",
    "ModelNotFoundError": "model-not-found",
    "VersionNotFoundError": "version-not-found",
    "StageEmptyError": "stage-empty",
    "RefError": "bad-ref",
    "TimeSpecError": "bad-time",
    "RegistryLockedError": "registry-locked",
    "ChangedSincePlannedError": "changed-since-planned",
    "LifecycleError": "refused",
    "ArtifactsMissingError": "weights-missing",
    "HashMismatchError": "hash-mismatch",
    "HubError": "hub",
    "StorageError": "storage",
    "DatasetError": "dataset",
    "CanaryConfigError": "canary-config",
    "MetricsError": "metrics",
    "StalledError": "stalled",
    "NotARepositoryError": "not-a-git-repository",
    "GitError": "git",
    "GitHubUnreachableError": "github-unreachable",
    "GitHubError": "github",
    "RegopsError": "error",
}


def error_code(error: BaseException) -> str:
    for cls in type(error).__mro__:
        if cls.__name__ in ERROR_CODES:
            return ERROR_CODES[cls.__name__]
    return "bug"


def _fail(wants_json: bool, exit_code: int, code: str, message: str, text: str | None = None) -> int:
    if wants_json:
        sys.stderr.write(json.dumps({"code": code, "message": message, "exit": exit_code}) + "\n")
    else:
        sys.stderr.write((text if text is not None else f"regops: error: {message}") + "\n")
    return exit_code


def _wants_json(args: argparse.Namespace | None, argv: Sequence[str]) -> bool:
    if args is None:  # the command line did not parse: ask it as written
        return "--json" in argv or "--format=json" in argv or ("--format", "json") in pairwise(argv)
    return bool(getattr(args, "json", False)) or getattr(args, "format", None) == "json"


# One parser per process, each verb's arguments added when it is first parsed (all of them, some 240, cost ~35 ms of
# start-up): a process that calls main() more than once (a test, a script driving regops) builds each verb once.
# Parsing leaves the parser as it found it.
_parser = functools.cache(functools.partial(build_parser, lazy=True))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help, --version
        return int(e.code or 0)
    except UsageError as e:
        return _fail(_wants_json(None, argv), EXIT_USAGE, "usage", e.message, e.text)
    with _looking(args):
        return _run(args, wants_json=_wants_json(args, argv))


# The verbs whose answers are keyed by git's look at every model folder (Registry.summaries: status, history): git
# begins now, its lstat of every file (~0.15 s at 100,000 versions) beside the import of the verb's module.
_LOOKERS: Final = frozenset({"reads:cmd_status", "reads:cmd_history"})


def _looking(args: argparse.Namespace) -> contextlib.AbstractContextManager[None]:
    if args.func == "reads:cmd_validate" and args.base:
        return _comparing(args.registry, args.base)
    if args.func not in _LOOKERS:
        return contextlib.nullcontext()
    from regops import freshness  # here: its subprocess import is neither --help's nor the other verbs'

    return freshness.looking(freshness.models_folder(args.registry))


def _comparing(registry: str | None, base: str) -> contextlib.AbstractContextManager[None]:
    """``validate --base``: git's comparison of the work tree with ``base`` (what the check reads first) begun
    now, beside the import of the verb's module and the check's; used only if the guess is the registry the verb
    opens (the same repository and folder), else stopped unused."""
    from regops import freshness  # here, as the flow below: neither is --help's nor the other verbs'
    from regops.flows import begun

    return begun.comparing(freshness.models_folder(registry).parent, base)


def run() -> int:
    """The ``regops`` command: :func:`main`, and the process then ends without the collector walking its heap (at
    100,000 versions ~0.07 s of a 1 s check, ~0.02 s after a 15,000-row history). Every file regops writes is closed
    by then, finalizers and atexit still run; the OS frees the memory. A program calling main() keeps its collector."""
    code = main()
    gc.freeze()
    return code


def _run(args: argparse.Namespace, *, wants_json: bool) -> int:
    """The verb, and the one place that turns whatever it raises into a message and an exit code."""
    try:
        return verb(args.func)(args)
    except UsageError as e:
        return _fail(wants_json, EXIT_USAGE, "usage", e.message, e.text)
    except KeyboardInterrupt:
        return _fail(wants_json, EXIT_INTERRUPTED, "interrupted", "interrupted")
    except Exception as e:  # the one place that catches everything
        if isinstance(e, RegopsError):
            usage = isinstance(e, TimeSpecError)  # an --at that names no moment
            return _fail(wants_json, EXIT_USAGE if usage else EXIT_PROBLEMS, error_code(e), str(e))
        traceback.print_exc()
        message = f"a bug in regops ({type(e).__name__}: {e}); please report it with the traceback above"
        return _fail(wants_json, EXIT_BUG, "bug", message, f"regops: this is {message}")


def verb(name: str) -> Verb:
    """The function a verb names (``"MODULE:FUNCTION"`` of this package), its module imported now: a verb's module
    imports the api and the renderers, which ``--help`` and a command line that does not parse never need."""
    module, _, function = name.partition(":")
    found: Verb = getattr(importlib.import_module(f"regops.cli.{module}"), function)
    return found
