"""The cron dialect and its time-zone/DST rules (SEMANTICS §10.2), on computed occurrences.

No clock is read: every test asks for the occurrences after a fixed instant.
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from celery_trigger._engine import cron

UTC = timezone.utc
NEW_YORK = ZoneInfo("America/New_York")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(moments: list[datetime]) -> list[str]:
    return [m.strftime("%Y-%m-%dT%H:%MZ") for m in moments]


def upcoming(expression: str, after: str, count: int, tz: str = "UTC") -> list[str]:
    return iso(cron.occurrences(cron.parse(expression), at(after), ZoneInfo(tz), count))


# the dialect --------------------------------------------------------------------------
def test_every_two_hours_fires_on_the_even_hours_in_utc() -> None:
    """SCHED-1: "0 */2 * * *" fires at 00:00, 02:00, 04:00 UTC."""
    # Given the pattern in UTC
    # When the occurrences after 23:30 are computed
    got = upcoming("0 */2 * * *", "2024-12-31T23:30:00", 3)
    # Then they are the even hours of the next day
    assert got == ["2025-01-01T00:00Z", "2025-01-01T02:00Z", "2025-01-01T04:00Z"]


def test_a_time_in_tokyo_fires_at_the_previous_utc_evening() -> None:
    """SCHED-2: "0 5 * * *" in Asia/Tokyo fires at 20:00 UTC of the previous day."""
    # Given 05:00 in Tokyo (UTC+9)
    # When the next occurrences after 2025-01-01 00:00 UTC are computed
    got = upcoming("0 5 * * *", "2025-01-01T00:00:00", 2, "Asia/Tokyo")
    # Then each is 20:00 UTC the day before the Tokyo date
    assert got == ["2025-01-01T20:00Z", "2025-01-02T20:00Z"]


def test_occurrences_are_strictly_increasing() -> None:
    """SCHED-4: each occurrence is strictly after the previous one."""
    # Given a pattern with several firings per day
    # When ten occurrences are computed
    got = cron.occurrences(cron.parse("*/7 1-3 * * *"), at("2025-01-01T00:00:00"), UTC, 10)
    # Then the list is strictly increasing and starts after the given instant
    assert all(a < b for a, b in itertools.pairwise(got))
    assert got[0] == at("2025-01-01T01:00:00")


def test_last_day_of_month_follows_month_length() -> None:
    """SCHED-7: "0 0 L * *" fires on Jan 31, Feb 28 (2025), Mar 31."""
    # Given the last-day pattern
    # When the occurrences of early 2025 are computed
    got = upcoming("0 0 L * *", "2025-01-01T00:00:00", 3)
    # Then they fall on each month's last day
    assert got == ["2025-01-31T00:00Z", "2025-02-28T00:00Z", "2025-03-31T00:00Z"]


def test_last_monday_of_each_month() -> None:
    """SCHED-7: "0 0 * * 1L" fires on the last Monday of each month."""
    # Given the last-Monday pattern
    # When the occurrences of early 2025 are computed
    got = upcoming("0 0 * * 1L", "2025-01-01T00:00:00", 3)
    # Then they are Jan 27, Feb 24 and Mar 31 2025
    assert got == ["2025-01-27T00:00Z", "2025-02-24T00:00Z", "2025-03-31T00:00Z"]


def test_second_friday_of_each_month() -> None:
    """SCHED-7: "0 0 * * 5#2" fires on the second Friday."""
    # Given the nth-weekday pattern, also with a name
    # When the occurrences of early 2025 are computed
    got = upcoming("0 0 * * 5#2", "2025-01-01T00:00:00", 3)
    # Then they are Jan 10, Feb 14 and Mar 14 2025, and FRI#2 means the same
    assert got == ["2025-01-10T00:00Z", "2025-02-14T00:00Z", "2025-03-14T00:00Z"]
    assert upcoming("0 0 * * FRI#2", "2025-01-01T00:00:00", 3) == got


def test_day_of_month_and_day_of_week_match_either() -> None:
    """§10.2: with both day fields restricted a day matches if either matches."""
    # Given "the 13th or any Friday"
    # When the occurrences from Wed 2025-01-01 are computed
    got = upcoming("0 0 13 * FRI", "2025-01-01T00:00:00", 3)
    # Then Fridays 3 and 10 and Monday the 13th all fire
    assert got == ["2025-01-03T00:00Z", "2025-01-10T00:00Z", "2025-01-13T00:00Z"]


def test_names_question_mark_sunday_seven_and_aliases_parse() -> None:
    """§10.2: month/weekday names, ? as *, 0 and 7 = Sunday, @daily-style aliases."""
    # Given equivalent spellings
    # When they are parsed
    # Then they describe the same occurrences
    assert (
        upcoming("0 9 ? JAN SUN", "2025-01-01T00:00:00", 2)
        == upcoming("0 9 * 1 7", "2025-01-01T00:00:00", 2)
        == upcoming("0 9 * 1 0", "2025-01-01T00:00:00", 2)
        == ["2025-01-05T09:00Z", "2025-01-12T09:00Z"]
    )
    assert upcoming("@daily", "2025-01-01T10:00:00", 1) == ["2025-01-02T00:00Z"]
    assert upcoming("@hourly", "2025-01-01T10:00:00", 1) == ["2025-01-01T11:00Z"]
    assert upcoming("@weekly", "2025-01-01T10:00:00", 1) == ["2025-01-05T00:00Z"]


@pytest.mark.parametrize(
    "expression",
    [
        "*/15 * * * *",
        "0 9 * * MON-FRI",
        "5,35 */3 * * *",
        "0 0 1 */2 *",
        "30 4 1-7 * *",
        "0 12 * JUN-AUG SAT,SUN",
        "10-50/20 8-18 * * 1-5",
        "0 0 29 2 *",
    ],
)
def test_plain_expressions_agree_with_croniter_in_utc(expression: str) -> None:
    """§10.2: on the standard subset in UTC the dialect agrees with croniter."""
    # Given an expression without L, #, or a day-field conflict
    start = at("2024-01-30T22:17:00")
    # When both compute the next 20 occurrences
    ours = cron.occurrences(cron.parse(expression), start, UTC, 20)
    theirs = croniter(expression, start).all_next(datetime)
    # Then they agree
    assert ours == [next(theirs).astimezone(UTC) for _ in range(20)]


# time zones and DST ----------------------------------------------------------------------
def test_spring_forward_moves_a_skipped_time_by_the_gap() -> None:
    """SCHED-8: "30 2 * * *" in New York fires at 07:30Z (03:30 EDT) on 2025-03-09."""
    # Given a daily 02:30 in New York, which does not exist on the spring-forward day
    # When the occurrences around that day are computed
    got = upcoming("30 2 * * *", "2025-03-08T12:00:00", 3, "America/New_York")
    # Then that day fires at 03:30 EDT, the others at 02:30 local
    assert got == ["2025-03-09T07:30Z", "2025-03-10T06:30Z", "2025-03-11T06:30Z"]


def test_fall_back_fires_a_repeated_time_once_at_its_first_instant() -> None:
    """SCHED-8: on the fall-back day (2025-11-02) a daily time in the repeated hour fires
    once, at the first (EDT) instant: "30 1 * * *" → 05:30Z.

    SEMANTICS' SCHED-8 text gives 05:30Z for "30 2 * * *", but 02:30 is not repeated that day
    (it happens once, at 07:30Z = 02:30 EST); 05:30Z is 01:30 EDT, so the check is read as
    the 01:30 case and both are asserted here.
    """
    # Given daily 01:30 and 02:30 in New York
    # When the occurrences over the fall-back day are computed
    one_thirty = upcoming("30 1 * * *", "2025-11-01T12:00:00", 3, "America/New_York")
    two_thirty = upcoming("30 2 * * *", "2025-11-01T12:00:00", 2, "America/New_York")
    # Then 01:30 fires once that day, at 01:30 EDT, and 02:30 at 02:30 EST
    assert one_thirty == ["2025-11-02T05:30Z", "2025-11-03T06:30Z", "2025-11-04T06:30Z"]
    assert two_thirty == ["2025-11-02T07:30Z", "2025-11-03T07:30Z"]


def test_hourly_pattern_fires_every_real_hour_across_fall_back() -> None:
    """SCHED-8 / §10.2: an hourly pattern fires in both repeated 01:00 hours."""
    # Given "0 * * * *" in New York
    # When the occurrences from 23:00 local on Nov 1 are computed
    got = upcoming("0 * * * *", "2025-11-02T03:00:00", 4, "America/New_York")
    # Then 00:00 EDT, 01:00 EDT, 01:00 EST and 02:00 EST all fire, one real hour apart
    assert got == [
        "2025-11-02T04:00Z",
        "2025-11-02T05:00Z",
        "2025-11-02T06:00Z",
        "2025-11-02T07:00Z",
    ]


def test_hourly_pattern_skips_the_missing_hour_without_a_duplicate() -> None:
    """SCHED-8 / §10.2: on spring-forward an hourly pattern fires once at 03:00 EDT."""
    # Given "0 * * * *" in New York
    # When the occurrences over the gap are computed
    got = upcoming("0 * * * *", "2025-03-09T05:30:00", 3, "America/New_York")
    # Then 01:00 EST is followed by 03:00 EDT (the skipped 02:00 maps onto it) and 04:00
    assert got == ["2025-03-09T06:00Z", "2025-03-09T07:00Z", "2025-03-09T08:00Z"]


def test_every_fifteen_minutes_keeps_real_spacing_across_both_transitions() -> None:
    """§10.2: a minute pattern with hour "*" fires every real 15 minutes through DST."""
    # Given "*/15 * * * *" in New York
    for start in ("2025-03-09T05:00:00", "2025-11-02T04:00:00"):
        # When a few hours of occurrences around a transition are computed
        got = cron.occurrences(cron.parse("*/15 * * * *"), at(start), NEW_YORK, 16)
        # Then consecutive occurrences are exactly 15 real minutes apart
        assert {b - a for a, b in itertools.pairwise(got)} == {timedelta(minutes=15)}


# rejected expressions ------------------------------------------------------------------
def test_six_fields_are_rejected_with_the_upstream_message() -> None:
    """SCHED-6: "0 0 0 * * *" fails with "CRON expressions with seconds are not allowed"."""
    # Given a six-field expression
    # When it is parsed
    # Then the upstream message is raised
    with pytest.raises(ValueError, match="CRON expressions with seconds are not allowed"):
        cron.parse("0 0 0 * * *")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "minute value 61 is out of range"),
        ("", "CRON expression is required"),
        ("* * * *", "expected 5 fields"),
        ("0 0 15W * *", "'W'"),
        ("0 0 LW * *", "'W'"),
        ("0 0 * * 1#6", "n#1 to n#5"),
        ("5-3 * * * *", "start after end"),
        ("*/0 * * * *", "invalid step"),
        ("0 0 * 13 *", "month value 13"),
        ("0 0 * * 8", "day-of-week value 8"),
        ("0 0 31 2 *", "never matches"),
        ("@fortnightly", "unknown cron alias"),
        ("H * * * *", "invalid minute value"),
    ],
)
def test_invalid_expressions_name_the_problem(expression: str, message: str) -> None:
    """SCHED-6: a bad pattern fails with a message naming what is wrong."""
    # Given a malformed or unsupported expression
    # When it is parsed and evaluated
    # Then a ValueError names the problem
    with pytest.raises(ValueError, match=message):
        cron.next_after(cron.parse(expression), at("2025-01-01T00:00:00"), UTC)


def test_unknown_timezone_is_rejected() -> None:
    """SCHED-6: timezone "Mars/Base" fails."""
    # Given a zone name that is not IANA
    # When it is resolved
    # Then ValueError says it is invalid
    with pytest.raises(ValueError, match="Invalid timezone 'Mars/Base'"):
        cron.zone("Mars/Base")


# descriptions ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "text"),
    [
        ("* * * * *", "Every minute"),
        ("*/15 * * * *", "Every 15 minutes"),
        ("0 * * * *", "Every hour"),
        ("0 */2 * * *", "Every 2 hours"),
        ("0 9 * * MON-FRI", "At 09:00, on Monday through Friday"),
        ("0 0 L * *", "At 00:00, on the last day of the month"),
        ("0 0 * * 1L", "At 00:00, on the last Monday of the month"),
        ("0 0 * * 5#2", "At 00:00, on the second Friday of the month"),
        ("30 8,18 * * *", "At 08:30 and 18:30"),
        ("*/5 9-17 * * 1-5", "Every 5 minutes, between 09:00 and 17:59, on Monday through Friday"),
        ("0 0 1 JAN-MAR *", "At 00:00, on day 1 of the month, only in January through March"),
    ],
)
def test_description_reads_like_the_expression(expression: str, text: str) -> None:
    """§10.1: a schedule carries a human-readable description of its cron."""
    # Given an expression
    # When it is described
    # Then the text says when it fires
    assert cron.describe(cron.parse(expression)) == text


def _brute_force_next(expression: cron.CronExpression, after: datetime, tz: ZoneInfo) -> datetime:
    """Every instant of every matching wall time over a few days; the first after ``after``."""
    first = after.astimezone(tz).date() - timedelta(days=1)
    instants = [
        instant
        for day in (first + timedelta(days=n) for n in range(4))
        if cron.day_matches(expression, day)
        for hour in expression.hours
        for minute in expression.minutes
        for instant in cron._instants(
            expression, datetime(day.year, day.month, day.day, hour, minute), tz
        )
    ]
    return min(i for i in instants if i > after)


@pytest.mark.parametrize(
    "zone", ["America/New_York", "Australia/Lord_Howe", "Antarctica/Troll", "America/Santiago"]
)
def test_next_occurrence_matches_a_brute_force_search_around_transitions(zone: str) -> None:
    """§10.2 DST rules: around every 2025 transition of zones with 1-hour, 30-minute and
    2-hour shifts, the next occurrence equals the earliest instant of a brute-force search."""
    # Given the zone's 2025 transitions and patterns that fire in and around the shifted hours
    tz = ZoneInfo(zone)
    moments = [
        datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=30 * n) for n in range(365 * 48)
    ]
    transitions = [
        b
        for a, b in itertools.pairwise(moments)
        if a.astimezone(tz).utcoffset() != b.astimezone(tz).utcoffset()
    ]
    patterns = [
        cron.parse(p)
        for p in (
            "*/7 * * * *",
            "0 * * * *",
            "30 1 * * *",
            "30 2 * * *",
            "15,45 0-3 * * *",
            "0 0 * * *",
        )
    ]
    assert len(transitions) == 2
    for transition in transitions:
        for offset in range(-240, 241, 37):
            after = transition + timedelta(minutes=offset)
            for pattern in patterns:
                # When the next occurrence is computed
                # Then it is the brute-force answer
                assert cron.next_after(pattern, after, tz) == _brute_force_next(
                    pattern, after, tz
                ), (pattern.expression, after)
