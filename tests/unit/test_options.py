"""Validation of user options (``celery_trigger.options``): the duration grammar (G-1, G-2,
D-13), machine resolution (TASK-29), the max_duration clamp (TASK-27, TRIG-19), tags (TRIG-14,
D-14) and retry options (TASK-3, §1.2). Pure functions: no Redis, no worker.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from celery_trigger.options import (
    MACHINE_PRESETS,
    RetryOptions,
    clamp_max_duration,
    coerce_retry,
    normalize_tags,
    parse_duration_string,
    resolve_delay,
    resolve_machine,
    to_seconds,
)

# duration grammar ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1h52m18s", 6_738_000),
        ("2w", 1_209_600_000),
        ("1hr", 3_600_000),
        ("90s", 90_000),
        ("1d", 86_400_000),
    ],
)
def test_duration_strings_parse_to_the_documented_milliseconds(text: str, ms: int) -> None:
    """G-1: "1h52m18s" is 6,738,000 ms, "2w" 1,209,600,000 ms, "1hr" 3,600,000 ms."""
    # Given a duration string in the Trigger.dev grammar
    # When it is parsed
    seconds = parse_duration_string(text)
    # Then it is the documented number of milliseconds
    assert seconds * 1000 == ms


@pytest.mark.parametrize("text", ["1.5h", "1 h", "h", "", "1s" * 51, "5", "-1s", "1y"])
def test_malformed_duration_strings_are_rejected(text: str) -> None:
    """G-2, D-13: "1.5h", "1 h", "h", "" and strings over 100 characters are not durations."""
    # Given a string outside the grammar (``"1s" * 51`` is 102 well-formed characters)
    # When it is parsed
    # Then it is a ValueError
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration_string(text)


def test_a_repeated_unit_counts_only_its_first_occurrence() -> None:
    """§0.1 grammar D: each unit is counted once, the first occurrence."""
    # Given a string that names minutes twice
    # When it is parsed
    # Then only the first "1m" counts
    assert parse_duration_string("1m2m") == 60.0


def test_to_seconds_accepts_strings_numbers_and_timedeltas() -> None:
    """API.md durations: a grammar string, int/float seconds or a timedelta."""
    # Given the three accepted forms
    # When each is normalised
    # Then all are seconds
    assert to_seconds("2h30m") == 9000.0
    assert to_seconds(42) == 42.0
    assert to_seconds(1.5) == 1.5
    assert to_seconds(timedelta(minutes=2)) == 120.0


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("banana", ValueError),
        (-1, ValueError),
        (float("nan"), ValueError),
        (float("inf"), ValueError),
        (True, TypeError),
        ([1], TypeError),
        (None, TypeError),
    ],
)
def test_to_seconds_rejects_values_that_are_not_durations(
    value: object, error: type[Exception]
) -> None:
    """D-13: an unparsable or negative duration is an error at the call."""
    # Given a value that is not a duration
    # When it is normalised
    # Then the call raises and names the option
    with pytest.raises(error, match="delay"):
        to_seconds(value, name="delay")  # type: ignore[arg-type]


def test_an_unparsable_delay_is_a_value_error_and_a_past_delay_means_none() -> None:
    """D-13 (stricter than G-3), TRIG-9: "banana" raises; a past instant is no delay."""
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    # Given an unparsable delay, a past instant and a relative delay
    # When each is resolved
    # Then "banana" raises, the past instant gives None, "10m" gives now + 10 minutes
    with pytest.raises(ValueError):
        resolve_delay("banana", now)
    assert resolve_delay(now - timedelta(seconds=1), now) is None
    assert resolve_delay("10m", now) == now + timedelta(minutes=10)


# machines -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "preset"),
    [
        ({"cpu": 1, "memory": 2}, "medium-1x"),
        ({"cpu": 2, "memory": 1}, "medium-2x"),
        ({"cpu": 0.25, "memory": 0.25}, "micro"),
        ({"cpu": 0.5, "memory": 1}, "small-2x"),
        ({"cpu": 64, "memory": 1}, "small-1x"),
    ],
)
def test_deprecated_cpu_memory_resolves_to_the_first_preset_that_fits(
    request_: dict[str, float], preset: str
) -> None:
    """TASK-29, §1.7: {cpu 1, memory 2} → medium-1x; {cpu 2, memory 1} → medium-2x; a request
    no preset can hold falls back to the default small-1x."""
    # Given a deprecated {cpu, memory} machine request
    # When it is resolved
    # Then it is the first preset of the table with both values at least as large
    assert resolve_machine(request_) == preset


def test_machine_presets_match_the_documented_sizes() -> None:
    """§1.7: the preset table (vCPU, memory GB)."""
    # Given the preset table
    sizes = {name: (p.cpu, p.memory) for name, p in MACHINE_PRESETS.items()}
    # Then it is the upstream table, in order
    assert sizes == {
        "micro": (0.25, 0.25),
        "small-1x": (0.5, 0.5),
        "small-2x": (1, 1),
        "medium-1x": (1, 2),
        "medium-2x": (2, 4),
        "large-1x": (4, 8),
        "large-2x": (8, 16),
    }


def test_machine_accepts_a_name_or_a_preset_dict_and_rejects_unknown_names() -> None:
    """§1.7: `machine` is a preset name or {preset}; anything else is an error at the call."""
    # Given the accepted forms and some bad ones
    # When each is resolved
    # Then names pass through and bad values raise ValueError
    assert resolve_machine("large-1x") == "large-1x"
    assert resolve_machine({"preset": "micro"}) == "micro"
    assert resolve_machine(None) is None
    for bad in ("huge", {"preset": "huge"}, {"cpu": 1}):
        with pytest.raises(ValueError):
            resolve_machine(bad)


# max_duration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "applied"),
    [
        (1, 5),
        (2, 5),
        (5, 5),
        (60, 60),
        ("1m", 60),
        (timedelta(hours=1), 3600),
        (10**12, 2_147_483_647),
    ],
)
def test_max_duration_is_clamped_to_five_seconds_and_int32(value: object, applied: int) -> None:
    """TASK-27 (1 → 5), TRIG-19 (2 → 5), §1.6: values are clamped to [5, 2147483647]."""
    # Given a max_duration value
    # When it is clamped
    # Then it lies within the bounds without an error
    assert clamp_max_duration(value) == applied  # type: ignore[arg-type]


def test_max_duration_none_means_no_value_and_garbage_is_rejected() -> None:
    """§1.6, D-13: None is "not given"; an unparsable value raises."""
    # Given no value and an unparsable one
    # Then None stays None and the bad string raises ValueError
    assert clamp_max_duration(None) is None
    with pytest.raises(ValueError):
        clamp_max_duration("forever")


# tags ---------------------------------------------------------------------------------------


def test_tags_accept_a_string_drop_blanks_and_deduplicate() -> None:
    """TRIG-14, D-14: "user_1" → ["user_1"]; ["a", " "] → ["a"]; duplicates are dropped."""
    # Given the accepted shapes of the tags option
    # When they are normalised
    # Then the stored list is as documented, order kept
    assert normalize_tags("user_1") == ["user_1"]
    assert normalize_tags(["a", " "]) == ["a"]
    assert normalize_tags(["b", "a", "b"]) == ["b", "a"]
    assert normalize_tags(None) == []


def test_more_than_ten_tags_are_rejected_with_the_upstream_message() -> None:
    """TRIG-14, D-14: 11 tags are rejected; 10 are accepted."""
    # Given 10 and 11 distinct tags
    ten = [f"t{i}" for i in range(10)]
    # When they are normalised
    # Then 10 pass and 11 raise with the upstream wording
    assert normalize_tags(ten) == ten
    with pytest.raises(ValueError, match=r"Runs can only have 10 tags, you're trying to set 11\."):
        normalize_tags([*ten, "t10"])


def test_tag_length_is_limited_to_64_characters() -> None:
    """D-14: a tag is 1-64 characters."""
    # Given tags of 64 and 65 characters
    # Then the first is kept and the second rejected
    assert normalize_tags(["x" * 64]) == ["x" * 64]
    with pytest.raises(ValueError, match="64"):
        normalize_tags(["x" * 65])


def test_tags_that_are_not_strings_are_type_errors() -> None:
    """API.md: tags are a string or a list of strings."""
    # Given non-string tags
    # Then each is a TypeError
    with pytest.raises(TypeError):
        normalize_tags([1])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        normalize_tags({"a": 1})  # type: ignore[arg-type]


# retry options ------------------------------------------------------------------------------


def test_retry_options_default_to_the_upstream_policy() -> None:
    """§1.2 defaultRetryOptions: 3 attempts, factor 2, 1000-60000 ms, randomized."""
    # Given RetryOptions with nothing set
    opts = RetryOptions()
    # Then the fields are the upstream defaults
    assert opts.to_dict() == {
        "max_attempts": 3,
        "factor": 2,
        "min_timeout_in_ms": 1000,
        "max_timeout_in_ms": 60000,
        "randomize": True,
    }


def test_a_partial_retry_dict_inherits_the_defaults() -> None:
    """TASK-3: retry {max_attempts: 5} inherits factor 2 / min 1000 / max 60000 / randomize."""
    # Given a task retry option with only max_attempts
    # When it is coerced
    opts = coerce_retry({"max_attempts": 5})
    # Then every other field is the default
    assert opts == RetryOptions(
        max_attempts=5, factor=2, min_timeout_in_ms=1000, max_timeout_in_ms=60000, randomize=True
    )


def test_a_retry_dict_overlays_the_given_base() -> None:
    """D-1: config defaults are merged over a base policy field by field."""
    # Given a base policy and a dict that changes one field
    base = RetryOptions(max_attempts=3, max_timeout_in_ms=10000)
    # When the dict is coerced over the base
    opts = coerce_retry({"factor": 3}, base)
    # Then the changed field wins and the rest come from the base
    assert opts == RetryOptions(max_attempts=3, factor=3, max_timeout_in_ms=10000)
    assert coerce_retry(None) is None
    assert coerce_retry(base) is base


@pytest.mark.parametrize(
    "fields",
    [
        {"max_attempts": 0},
        {"max_attempts": True},
        {"max_attempts": 2.5},
        {"factor": 0},
        {"factor": "2"},
        {"min_timeout_in_ms": -1},
        {"max_timeout_in_ms": "1s"},
        {"randomize": "yes"},
    ],
)
def test_invalid_retry_fields_are_value_errors(fields: dict[str, object]) -> None:
    """§1.2, D-13: a bad retry option is rejected when the task is defined."""
    # Given a retry option with one invalid field
    # When RetryOptions is built
    # Then it raises ValueError naming the field
    with pytest.raises(ValueError, match=next(iter(fields))):
        RetryOptions(**fields)  # type: ignore[arg-type]


def test_unknown_retry_keys_and_wrong_types_are_rejected() -> None:
    """§1.2, D-13: typos in a retry dict are errors, not silently ignored."""
    # Given a misspelt key and a value that is not a dict
    # Then the first is a ValueError and the second a TypeError
    with pytest.raises(ValueError, match="max_attempt"):
        coerce_retry({"max_attempt": 3})
    with pytest.raises(TypeError):
        coerce_retry(3)  # type: ignore[arg-type]
