"""How long regops waits on a server: the connect and read timeouts of every Hub and metrics request.

``REGOPS_HTTP_CONNECT_TIMEOUT`` (default 10 s) bounds opening a connection;
``REGOPS_HTTP_TIMEOUT`` (default 60 s) bounds every wait for bytes. A server
that answers but drips (a byte every few seconds) never trips a read timeout,
so a response is also *stalled* when a whole read-timeout window brings fewer
than :data:`MIN_BYTES_PER_WINDOW` bytes (:class:`Watchdog`); a slow but moving
transfer of any size is never cut.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from regops.errors import RegopsError

__all__ = [
    "CONNECT_ENV",
    "MIN_BYTES_PER_WINDOW",
    "READ_ENV",
    "StalledError",
    "TimeoutConfigError",
    "Timeouts",
    "Watchdog",
    "http_timeouts",
]

CONNECT_ENV: Final = "REGOPS_HTTP_CONNECT_TIMEOUT"
READ_ENV: Final = "REGOPS_HTTP_TIMEOUT"
MIN_BYTES_PER_WINDOW: Final = 64 << 10


class TimeoutConfigError(RegopsError):
    """A timeout variable that is not a positive number of seconds."""


class StalledError(RegopsError):
    """A server that did not answer, or answered too slowly to be moving, within the timeouts."""

    def __init__(self, what: str, how: str, seconds: float) -> None:
        self.what, self.seconds = what, seconds
        super().__init__(
            f"{what}: {how} within {seconds:g} s; check that the server is up and reachable, or wait longer by "
            f"raising {READ_ENV} (read) or {CONNECT_ENV} (connect), in seconds"
        )


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0
    read: float = 60.0


def http_timeouts(env: Mapping[str, str] | None = None) -> Timeouts:
    """The timeouts the environment sets (``os.environ`` by default); a malformed value is refused, never ignored."""
    env = os.environ if env is None else env
    default = Timeouts()
    return Timeouts(_seconds(env, CONNECT_ENV, default.connect), _seconds(env, READ_ENV, default.read))


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise TimeoutConfigError(f"{name}={text!r} is not a number of seconds greater than 0 (e.g. {default:g})")
    return value


class Watchdog:
    """Counts a response's bytes as they arrive; raises :class:`StalledError` when a read-timeout window is a drip."""

    def __init__(self, what: str, timeouts: Timeouts) -> None:
        self.what, self.window = what, timeouts.read
        self.start, self.received = time.monotonic(), 0

    def got(self, n: int) -> None:
        self.received += n
        now = time.monotonic()
        if now - self.start < self.window:
            return
        if self.received < MIN_BYTES_PER_WINDOW:
            raise StalledError(
                self.what, f"the server sent only {self.received} bytes (a stalled transfer)", self.window
            )
        self.start, self.received = now, 0
