"""What every verb shares: the exit codes, the usage error, printing, the signer options as keyword
arguments, and a byte counter on stderr. Light: the parser imports it too (``regops --help``)."""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

Verb = Callable[[argparse.Namespace], int]


class UsageError(Exception):
    """A command line that does not parse or does not make sense (exit 2); ``text``: as printed without --json."""

    def __init__(self, message: str, text: str | None = None) -> None:
        super().__init__(message)
        self.message, self.text = message, text or f"regops: error: {message}"


def out(text: str) -> None:
    sys.stdout.write(text + "\n")


def signer(args: argparse.Namespace) -> dict[str, Any]:
    """The options :func:`regops.cli.parser._attesting` adds, as the keyword arguments the api takes."""
    return {"signing_key": args.signing_key, "signing_key_env": args.signing_key_env}


@contextmanager
def progress_meter(label: str) -> Iterator[Callable[[int], None] | None]:
    """A byte counter on stderr while the block runs, when stderr is a terminal (never in CI logs)."""
    if not sys.stderr.isatty() or os.environ.get("CI"):
        yield None
        return
    lock, state = threading.Lock(), {"done": 0, "shown": 0.0}

    def advance(n: int) -> None:
        with lock:
            state["done"] += n
            now = time.monotonic()
            if now - state["shown"] > 0.1:
                state["shown"] = now
                sys.stderr.write(f"\r{label}: {state['done'] / 1e6:,.1f} MB")

    try:
        yield advance
    finally:
        if state["shown"]:
            sys.stderr.write("\n")
