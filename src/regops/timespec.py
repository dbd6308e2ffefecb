"""Reading the times people type: ``--at 2026-10-01``, ``--at "3 weeks ago"``.

A date alone means 00:00 UTC that day; a datetime without a zone is UTC.
Relative forms count back from ``now``: ``now``, ``today`` and ``yesterday``
(00:00 UTC), and ``N unit(s) ago`` or ``a/an unit ago`` with milliseconds
(``ms``), seconds, minutes (``m``), hours, days, weeks, months (calendar
months) or years.

A moment before :data:`EARLIEST` (the Unix epoch: git records nothing
earlier, and neither does a registry) is refused, so no verb computes with
dates at the edge of the calendar.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Final

from regops.errors import RegopsError, TimeSpecError

__all__ = ["EARLIEST", "TimeOutOfRangeError", "as_utc", "parse_time"]

EARLIEST: Final = datetime(1970, 1, 1, tzinfo=UTC)
# "ms" before "m": otherwise "5 ms ago" reads as the unit "m" with a plural "s" (five minutes).
_RELATIVE: Final = re.compile(
    r"^(?P<n>\d+|an?|one)\s*"
    r"(?P<unit>ms|msec|millisecond|s|sec|second|m|min|minute|h|hour|d|day|w|week|month|y|year)s?\s+ago$"
)
_MS: Final = timedelta(milliseconds=1)
_S: Final = timedelta(seconds=1)
_SPANS: Final = {
    **dict.fromkeys(("ms", "msec", "millisecond"), _MS),
    **dict.fromkeys(("s", "sec", "second"), _S),
    **dict.fromkeys(("m", "min", "minute"), 60 * _S),
    **dict.fromkeys(("h", "hour"), 3600 * _S),
}
_DAYS: Final = {"d": 1, "day": 1, "w": 7, "week": 7}


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """The moment ``text`` names, as an aware UTC datetime; raises TimeSpecError."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    spec = text.strip().lower()
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    named = {"now": now, "today": midnight, "yesterday": midnight - timedelta(days=1)}
    if spec in named:
        return named[spec]
    match = _RELATIVE.match(spec)
    try:
        moment = _ago(now, match["n"], match["unit"]) if match else _absolute(text.strip())
    except (ValueError, OverflowError):
        # Out of the calendar's range (year 1 to 9999), or not a date at all.
        raise TimeSpecError(text.strip()) from None
    if moment < EARLIEST:
        raise TimeOutOfRangeError(text.strip(), moment)
    return moment


class TimeOutOfRangeError(TimeSpecError):
    """A readable moment before :data:`EARLIEST`; ``moment`` is what the text named."""

    def __init__(self, text: str, moment: datetime) -> None:
        self.text = text
        self.moment = moment
        named, earliest = (m.isoformat().replace("+00:00", "Z") for m in (moment, EARLIEST))
        # Not TimeSpecError's "cannot read": the text was read; the moment is what is refused.
        RegopsError.__init__(
            self,
            f"{text!r} names {named}, before {earliest}: a registry records nothing that early "
            "(git's clock starts in 1970); give a moment from then on",
        )


def _ago(now: datetime, amount: str, unit: str) -> datetime:
    n = int(amount) if amount.isdigit() else 1
    if unit in _SPANS:
        return now - n * _SPANS[unit]
    if unit in _DAYS:
        return now - timedelta(days=n * _DAYS[unit])
    months = n * (12 if unit in ("y", "year") else 1)
    year, month = divmod(now.year * 12 + now.month - 1 - months, 12)
    day = min(now.day, _days_in_month(year, month + 1))
    return now.replace(year=year, month=month + 1, day=day)


def _days_in_month(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def _absolute(text: str) -> datetime:
    candidate = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", candidate):
        return datetime.combine(date.fromisoformat(candidate), datetime.min.time(), UTC)
    moment = datetime.fromisoformat(candidate)
    return as_utc(moment)


def as_utc(moment: datetime) -> datetime:
    """An aware datetime in UTC; a naive one is read as UTC, as everywhere in regops."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
