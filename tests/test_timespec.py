"""`parse_time`: the moments people type after `--at`, always read against an explicit `now`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from regops.cli import main
from regops.errors import TimeSpecError
from regops.timespec import EARLIEST, TimeOutOfRangeError, parse_time
from tests.conftest import Tree

NOW = datetime(2026, 3, 31, 15, 45, 30, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-10-01", utc(2026, 10, 1)),
        ("2024-02-29", utc(2024, 2, 29)),
        ("2026-10-01T14:30:00Z", utc(2026, 10, 1, 14, 30)),
        ("2026-10-01t14:30:00z", utc(2026, 10, 1, 14, 30)),
        ("2026-10-01T14:30:00+02:00", utc(2026, 10, 1, 12, 30)),
        ("2026-10-01T14:30:00-05:30", utc(2026, 10, 1, 20, 0)),
        ("2026-10-01T23:30:00-01:00", utc(2026, 10, 2, 0, 30)),
        ("2026-10-01T14:30:00", utc(2026, 10, 1, 14, 30)),
        ("2026-10-01 14:30", utc(2026, 10, 1, 14, 30)),
        ("2026-10-01T14:30:00.250Z", datetime(2026, 10, 1, 14, 30, 0, 250000, tzinfo=UTC)),
        ("  2026-10-01  ", utc(2026, 10, 1)),
    ],
)
def test_absolute_times_are_read_as_utc(text: str, expected: datetime) -> None:
    got = parse_time(text, now=NOW)

    assert got == expected
    assert got.utcoffset() == timedelta(0), "results are always in UTC"


def test_a_date_alone_is_midnight_utc_not_local_midnight() -> None:
    got = parse_time("2026-10-01", now=NOW)

    assert (got.hour, got.minute, got.second) == (0, 0, 0)
    assert got.tzinfo is not None
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("NOW", NOW),
        ("  now ", NOW),
        ("today", utc(2026, 3, 31)),
        ("Today", utc(2026, 3, 31)),
        ("yesterday", utc(2026, 3, 30)),
    ],
)
def test_named_moments(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


def test_today_is_the_utc_day_even_when_now_is_given_in_another_zone() -> None:
    # 23:30 in New York on 31 March is 04:30 UTC on 1 April.
    now = datetime(2026, 3, 31, 23, 30, tzinfo=timezone(timedelta(hours=-5)))

    assert parse_time("today", now=now) == utc(2026, 4, 1)
    assert parse_time("yesterday", now=now) == utc(2026, 3, 31)
    assert parse_time("now", now=now) == utc(2026, 4, 1, 4, 30)


def test_yesterday_crosses_a_month_boundary() -> None:
    assert parse_time("yesterday", now=utc(2026, 3, 1, 8)) == utc(2026, 2, 28)


def test_without_now_the_clock_is_used() -> None:
    before = datetime.now(UTC)
    got = parse_time("now")
    after = datetime.now(UTC)

    assert before <= got <= after
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 second ago", NOW - timedelta(seconds=1)),
        ("30 seconds ago", NOW - timedelta(seconds=30)),
        ("90 sec ago", NOW - timedelta(seconds=90)),
        ("1 minute ago", NOW - timedelta(minutes=1)),
        ("45 minutes ago", NOW - timedelta(minutes=45)),
        ("5 min ago", NOW - timedelta(minutes=5)),
        ("1 hour ago", NOW - timedelta(hours=1)),
        ("36 hours ago", NOW - timedelta(hours=36)),
        ("1 day ago", NOW - timedelta(days=1)),
        ("10 days ago", NOW - timedelta(days=10)),
        ("1 week ago", NOW - timedelta(weeks=1)),
        ("3 weeks ago", utc(2026, 3, 10, 15, 45, 30)),
        ("2 months ago", utc(2026, 1, 31, 15, 45, 30)),
        ("1 year ago", utc(2025, 3, 31, 15, 45, 30)),
        ("3 years ago", utc(2023, 3, 31, 15, 45, 30)),
        ("0 days ago", NOW),
        ("3 Weeks Ago", utc(2026, 3, 10, 15, 45, 30)),
        ("  2 days ago  ", NOW - timedelta(days=2)),
    ],
)
def test_n_units_ago(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a week ago", NOW - timedelta(weeks=1)),
        ("a day ago", NOW - timedelta(days=1)),
        ("an hour ago", NOW - timedelta(hours=1)),
        ("a minute ago", NOW - timedelta(minutes=1)),
        ("a month ago", utc(2026, 2, 28, 15, 45, 30)),
        ("a year ago", utc(2025, 3, 31, 15, 45, 30)),
        ("one day ago", NOW - timedelta(days=1)),
    ],
)
def test_a_or_one_unit_ago(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("now", "text", "expected"),
    [
        # The day is clamped to the end of a shorter month, never rolled into the next one.
        (utc(2026, 3, 31), "1 month ago", utc(2026, 2, 28)),
        (utc(2024, 3, 31), "1 month ago", utc(2024, 2, 29)),
        (utc(2026, 5, 31), "1 month ago", utc(2026, 4, 30)),
        (utc(2026, 7, 31), "5 months ago", utc(2026, 2, 28)),
        (utc(2026, 3, 31), "13 months ago", utc(2025, 2, 28)),
        (utc(2024, 2, 29), "1 year ago", utc(2023, 2, 28)),
        (utc(2024, 2, 29), "4 years ago", utc(2020, 2, 29)),
        # Across the turn of the year, in both directions of the clamp.
        (utc(2026, 1, 15, 9, 30), "1 month ago", utc(2025, 12, 15, 9, 30)),
        (utc(2026, 2, 28), "3 months ago", utc(2025, 11, 28)),
        (utc(2026, 1, 31), "2 months ago", utc(2025, 11, 30)),
        (utc(2026, 3, 15), "12 months ago", utc(2025, 3, 15)),
    ],
)
def test_months_are_calendar_months(now: datetime, text: str, expected: datetime) -> None:
    assert parse_time(text, now=now) == expected


def test_twelve_months_ago_is_one_year_ago() -> None:
    now = utc(2024, 2, 29, 12)

    assert parse_time("12 months ago", now=now) == parse_time("1 year ago", now=now) == utc(2023, 2, 28, 12)


@pytest.mark.parametrize(
    "text",
    [
        "tomorrow",
        "",
        "   ",
        "2026-13-01",
        "2026-02-30",
        "2026-10-01T25:00:00Z",
        "in 3 days",
        "3 days",
        "-3 days ago",
        "3 fortnights ago",
        "last week",
    ],
)
def test_unreadable_times_are_a_clear_error(text: str) -> None:
    with pytest.raises(TimeSpecError) as caught:
        parse_time(text, now=NOW)

    message = str(caught.value)
    assert f"cannot read {text.strip()!r} as a time" in message
    for form in ("2026-10-01", "2026-10-01T14:30:00Z", "'now'", "'today'", "'yesterday'", "'N days ago'"):
        assert form in message, f"{form} missing from: {message}"
    for unit in ("seconds", "minutes", "hours", "days", "weeks", "months", "years"):
        assert unit in message, f"{unit} missing from: {message}"


def test_the_error_keeps_what_was_typed() -> None:
    with pytest.raises(TimeSpecError) as caught:
        parse_time("tomorrow", now=NOW)

    assert caught.value.text == "tomorrow"


@pytest.mark.parametrize(
    "text",
    ["10000 years ago", "1000000 days ago", "9999-12-31T23:59:59-01:00"],
)
def test_moments_out_of_range_are_a_clear_error(text: str) -> None:
    with pytest.raises(TimeSpecError):
        parse_time(text, now=NOW)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5 ms ago", NOW - timedelta(milliseconds=5)),
        ("5ms ago", NOW - timedelta(milliseconds=5)),
        ("250 milliseconds ago", NOW - timedelta(milliseconds=250)),
        ("1 millisecond ago", NOW - timedelta(milliseconds=1)),
        ("40 msecs ago", NOW - timedelta(milliseconds=40)),
        # Minutes keep their short forms: "m" alone, and "mins".
        ("5m ago", NOW - timedelta(minutes=5)),
        ("5 mins ago", NOW - timedelta(minutes=5)),
        ("5 months ago", utc(2025, 10, 31, 15, 45, 30)),
    ],
)
def test_milliseconds_are_milliseconds_not_minutes(text: str, expected: datetime) -> None:
    assert parse_time(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("0001-01-01", "0001-01-01T00:00:00Z"),
        ("1969-12-31T23:59:59Z", "1969-12-31T23:59:59Z"),
        ("1970-01-01T00:30:00+01:00", "1969-12-31T23:30:00Z"),
        ("57 years ago", "1969-03-31T15:45:30Z"),
    ],
)
def test_moments_before_1970_are_refused_with_what_they_name(text: str, named: str) -> None:
    with pytest.raises(TimeOutOfRangeError) as caught:
        parse_time(text, now=NOW)

    assert str(caught.value) == (
        f"{text!r} names {named}, before 1970-01-01T00:00:00Z: a registry records nothing that early "
        "(git's clock starts in 1970); give a moment from then on"
    )
    assert isinstance(caught.value, TimeSpecError)
    assert caught.value.text == text


def test_the_epoch_itself_is_accepted() -> None:
    assert parse_time("1970-01-01", now=NOW) == EARLIEST == utc(1970, 1, 1)


@pytest.mark.parametrize(
    "argv",
    [
        ["resolve", "sentiment@prod"],
        ["show", "sentiment@prod"],
        ["retention", "plan"],
        ["retention", "apply"],
        ["rollback", "sentiment", "--notes", "x", "--by", "alice", "--dry-run"],
    ],
)
def test_an_at_before_1970_is_a_usage_error_and_changes_nothing(
    tree: Tree, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    before = tree.snapshot()

    code = main([*argv, "--at", "0001-01-01", "--registry", str(tree.root)])

    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err == (
        "regops: error: '0001-01-01' names 0001-01-01T00:00:00Z, before 1970-01-01T00:00:00Z: a registry records "
        "nothing that early (git's clock starts in 1970); give a moment from then on\n"
    )
    after = tree.snapshot()
    after.pop("registry/.regops.lock", None)  # the writers' lock file, which stays (empty) by design
    assert after == before


def test_an_unreadable_at_is_a_usage_error(tree: Tree, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["retention", "plan", "--at", "5 fortnights ago", "--registry", str(tree.root)])

    assert code == 2
    assert capsys.readouterr().err.startswith("regops: error: cannot read '5 fortnights ago' as a time")
