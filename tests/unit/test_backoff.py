"""The retry delay formula (SEMANTICS §1.2) and rate-limit reset headers (§1.4)."""

from __future__ import annotations

import doctest

import pytest

from celery_trigger._engine import backoff
from celery_trigger._engine.backoff import next_retry_delay_ms, reset_delay_ms
from celery_trigger.options import MAX_ATTEMPTS_CAP, RetryOptions

ALMOST_ONE = 0.9999999999


def test_docstring_examples_hold() -> None:
    """§1.2: the module's examples are tests (STYLE: examples run in the suite)."""
    # Given the backoff module's docstring examples
    # When they are run
    results = doctest.testmod(backoff)
    # Then every example produced its documented output
    assert results.attempted > 0 and results.failed == 0


def test_fixed_backoff_follows_the_documented_example() -> None:
    """§1.2 example: {factor 1.8, min 500, max 30000, randomize off} gives 500, 900, 1620, 2916."""
    # Given a deterministic policy with room for five attempts
    opts = RetryOptions(
        max_attempts=5, factor=1.8, min_timeout_in_ms=500, max_timeout_in_ms=30000, randomize=False
    )
    # When the delays after attempts 1..4 are computed
    delays = [next_retry_delay_ms(opts, n) for n in range(1, 5)]
    # Then they match the upstream example
    assert delays == [500, 900, 1620, 2916]


def test_default_factors_double_from_one_second_and_stop_at_the_maximum() -> None:
    """§1.2 example (TASK-1, TASK-3 formula): defaults without randomness give 1000, 2000, 4000
    ... capped at 60000."""
    # Given the default policy, randomize off, with many attempts
    opts = RetryOptions(max_attempts=20, randomize=False)
    # When the delays are computed
    delays = [next_retry_delay_ms(opts, n) for n in range(1, 10)]
    # Then they double from 1 s and never exceed max_timeout_in_ms
    assert delays == [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]


def test_randomized_delays_stay_within_one_to_two_times_the_base() -> None:
    """TASK-2: with randomize on, gap 1 is in [1000, 2000) ms and gap 2 in [2000, 4000) ms."""
    # Given the defaults (randomize on) and random sources at both ends of [0, 1)
    opts = RetryOptions()
    # When the delays are computed with the lowest and the highest random draw
    low = [next_retry_delay_ms(opts, n, rng=lambda: 0.0) for n in (1, 2)]
    high = [next_retry_delay_ms(opts, n, rng=lambda: ALMOST_ONE) for n in (1, 2)]
    # Then the bounds are the base and (just under, after rounding at most) twice the base
    assert low == [1000, 2000]
    assert high == [2000, 4000]  # 1999.9999999 rounds to 2000; the draw itself is < 2x
    drawn = [next_retry_delay_ms(opts, 1) for _ in range(200)]
    assert all(d is not None and 1000 <= d <= 2000 for d in drawn)


def test_randomized_delay_never_exceeds_the_maximum() -> None:
    """TASK-2: no gap exceeds max_timeout_in_ms even with the largest random factor."""
    # Given a low ceiling
    opts = RetryOptions(max_attempts=10, max_timeout_in_ms=3000)
    # When the delay after a late attempt is drawn with the largest factor
    delay = next_retry_delay_ms(opts, 6, rng=lambda: ALMOST_ONE)
    # Then it is the ceiling
    assert delay == 3000


@pytest.mark.parametrize("max_attempts", [1, 3, 10])
def test_no_delay_once_the_attempt_budget_is_spent(max_attempts: int) -> None:
    """§1.2: attempt n >= max_attempts means no retry (TASK-1: exactly max_attempts attempts)."""
    # Given a policy with max_attempts attempts
    opts = RetryOptions(max_attempts=max_attempts, randomize=False)
    # When the last allowed attempt (or a later one) fails
    # Then there is no next attempt, while the one before still gets a delay
    assert next_retry_delay_ms(opts, max_attempts) is None
    assert next_retry_delay_ms(opts, max_attempts + 1) is None
    if max_attempts > 1:
        assert next_retry_delay_ms(opts, max_attempts - 1) is not None


def test_attempts_above_the_hard_cap_are_never_retried() -> None:
    """§1.2 rule 5: an attempt numbered above 250 (MAX_TASK_RUN_ATTEMPTS) is never retried."""
    # Given a policy that would allow 1000 attempts
    opts = RetryOptions(max_attempts=1000, factor=1, randomize=False)
    # When attempts at and above the cap fail
    at_cap = next_retry_delay_ms(opts, MAX_ATTEMPTS_CAP)
    above = next_retry_delay_ms(opts, MAX_ATTEMPTS_CAP + 1)
    # Then the cap itself may still retry (as upstream) but nothing above it does
    assert MAX_ATTEMPTS_CAP == 250
    assert at_cap == 1000
    assert above is None


def test_huge_factor_is_capped_instead_of_overflowing() -> None:
    """§1.2: min(max_timeout_in_ms, ...) bounds the delay even when factor**n overflows."""
    # Given a float factor whose high powers overflow a float
    opts = RetryOptions(max_attempts=250, factor=1e10, randomize=False)
    # When a late attempt fails
    # Then the delay is the maximum
    assert next_retry_delay_ms(opts, 200) == 60000


def test_rounding_is_half_up_like_javascript() -> None:
    """§1.2: round() is JavaScript's Math.round (2.5 -> 3), not banker's rounding."""
    # Given a base delay whose randomised value is exactly x.5
    opts = RetryOptions(min_timeout_in_ms=5, max_attempts=3)
    # When R = 1.5
    # Then 7.5 rounds up to 8
    assert next_retry_delay_ms(opts, 1, rng=lambda: 0.5) == 8


@pytest.mark.parametrize(
    ("header", "fmt", "expected"),
    [
        ("1700000010000", "unix_timestamp_in_ms", 10_000.0),
        ("1700000010", "unix_timestamp", 10_000.0),
        ("2023-11-14T22:13:30Z", "iso_8601", 10_000.0),
        ("2023-11-14T22:13:30+00:00", "iso_8601", 10_000.0),
        ("6m0s", "iso_8601_duration_openai_variant", 360_000.0),
        ("1.5s", "iso_8601_duration_openai_variant", 1_500.0),
        ("20ms", "iso_8601_duration_openai_variant", 20.0),
        ("1h2m3s", "iso_8601_duration_openai_variant", 3_723_000.0),
        ("1699999990000", "unix_timestamp_in_ms", 0.0),  # in the past: no wait
        ("soon", "unix_timestamp_in_ms", None),
        ("12abc", "unix_timestamp", None),
        ("not a date", "iso_8601", None),
        ("6 minutes", "iso_8601_duration_openai_variant", None),
        ("", "unix_timestamp_in_ms", None),
        (None, "unix_timestamp_in_ms", None),
    ],
)
def test_reset_headers_give_the_wait_until_the_reset(
    header: str | None, fmt: str, expected: float | None
) -> None:
    """§1.4 "headers" strategy: each reset_format is read; unreadable headers give None."""
    # Given "now" at 2023-11-14T22:13:20Z (1700000000000 ms)
    now_ms = 1_700_000_000_000.0
    # When the header is read in its format
    delay = reset_delay_ms(header, fmt, now_ms=now_ms)
    # Then the wait is the distance to the reset instant (never negative)
    assert delay == (pytest.approx(expected) if expected is not None else None)
