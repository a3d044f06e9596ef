"""Issue 12 item 7: every bad value is a typed error at trigger time, never a
``RecursionError``, ``OverflowError`` or a store error, and nothing is written (D-13)."""

from __future__ import annotations

import math
import random
from datetime import timedelta
from typing import Any

import pytest

import celery_trigger as ct
from tests.helpers import redis_client

from .conftest import Engine


@ct.task(id="fuzz-echo", retry={"max_attempts": 3})
def fuzz_echo(payload: Any) -> Any:
    return payload


def _deep(levels: int) -> Any:
    value: Any = 1
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


def _cycle() -> Any:
    a: dict[str, Any] = {"x": 1}
    a["self"] = [a]
    return a


TYPED = (TypeError, ValueError)

BAD_PAYLOADS: list[tuple[str, Any]] = [
    ("deep 5000", _deep(5000)),
    ("deep 300", _deep(300)),
    ("cycle", _cycle()),
    ("inf", {"x": math.inf}),
    ("nan", [math.nan]),
    ("huge int", {"n": 10**5000}),
    ("colliding keys", {1: "a", "1": "b"}),
    ("colliding nested keys", {"outer": [{True: 1, "true": 2}]}),
    ("colliding none key", {None: 1, "null": 2}),
]

BAD_OPTIONS: list[tuple[str, dict[str, Any]]] = [
    ("delay 1e20", {"delay": 1e20}),
    ("delay timedelta.max", {"delay": timedelta.max}),
    ("delay 9999999999d", {"delay": "9999999999d"}),
    ("ttl 1e20", {"ttl": 1e20}),
    ("ttl timedelta.max", {"ttl": timedelta.max}),
    ("priority inf", {"priority": math.inf}),
    ("priority -inf", {"priority": -math.inf}),
    ("priority nan", {"priority": math.nan}),
    ("idempotency ttl 1e30", {"idempotency_key": "k", "idempotency_key_ttl": 1e30}),
    (
        "idempotency ttl 99999999999d",
        {"idempotency_key": "k", "idempotency_key_ttl": "99999999999d"},
    ),
    (
        "idempotency ttl timedelta.max",
        {"idempotency_key": "k", "idempotency_key_ttl": timedelta.max},
    ),
    ("max_attempts 0", {"max_attempts": 0}),
    ("max_attempts -3", {"max_attempts": -3}),
    ("max_duration inf", {"max_duration": math.inf}),
    ("metadata inf", {"metadata": {"x": math.inf}}),
    ("metadata deep", {"metadata": _deep(3000)}),
    ("metadata cycle", {"metadata": _cycle()}),
    ("metadata colliding keys", {"metadata": {2: "a", "2": "b"}}),
]


def _nothing_written(engine: Engine) -> None:
    client = redis_client(engine.store)
    assert list(client.scan_iter(f"{engine.prefix}:run:*")) == []
    assert list(client.scan_iter(f"{engine.prefix}:idem:*")) == []
    assert client.llen(engine.queue) == 0


@pytest.mark.parametrize("payload", [p for _, p in BAD_PAYLOADS], ids=[n for n, _ in BAD_PAYLOADS])
def test_bad_payload_is_a_typed_error_and_writes_nothing(engine: Engine, payload: Any) -> None:
    """D-13, TRIG-1 (issue 12 item 7): deep, circular, non-finite, huge or key-colliding
    payloads raise TypeError/ValueError at the call, directly and by id, in a batch too."""
    # When such a payload is triggered through the task, by id and in a batch
    with pytest.raises(TYPED):
        fuzz_echo.trigger(payload)
    with pytest.raises(TYPED):
        ct.tasks.trigger("fuzz-echo", payload)
    with pytest.raises(ct.BatchTriggerError) as info:
        fuzz_echo.batch_trigger([{"payload": 1}, {"payload": payload}])
    # Then every error is typed and nothing was written
    assert isinstance(info.value.cause, TYPED)
    _nothing_written(engine)


@pytest.mark.parametrize("options", [o for _, o in BAD_OPTIONS], ids=[n for n, _ in BAD_OPTIONS])
def test_absurd_option_is_a_typed_error_and_writes_nothing(
    engine: Engine, options: dict[str, Any]
) -> None:
    """D-13, TRIG-9, TRIG-12 (issue 12 item 7): absurd durations, non-finite priorities,
    overflowing key TTLs and attempts ≤ 0 raise TypeError/ValueError, not OverflowError or
    StoreUnavailableError."""
    # When a trigger carries one absurd option
    with pytest.raises(TYPED):
        fuzz_echo.trigger({"ok": 1}, **options)
    # Then nothing was written
    _nothing_written(engine)


def _random_value(rng: random.Random, depth: int) -> Any:
    pick = rng.randrange(12 if depth < 40 else 7)
    scalars: list[Any] = [
        None, True, rng.randint(-(2**70), 2**70), rng.random() * 10 ** rng.randint(-5, 308),
        math.inf, math.nan, "s" * rng.randrange(5), "\ud800", 10**5000, object(),
    ]  # fmt: skip
    if pick < 7:
        return rng.choice(scalars)
    if pick < 9:
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    keys: list[Any] = ["a", "1", 1, 1.0, True, None, "true", "null", (1,)]
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def _random_options(rng: random.Random) -> dict[str, Any]:
    values: list[Any] = [
        0, -1, 1, 2**63, 1e20, -1e20, math.inf, -math.inf, math.nan, "1h", "banana", "99999999999d",
        timedelta.max, timedelta.min, timedelta(seconds=5), None, [1], True, "",
    ]  # fmt: skip
    names = ["delay", "ttl", "priority", "max_attempts", "max_duration", "idempotency_key_ttl",
             "concurrency_key", "tags", "machine"]  # fmt: skip
    options = {n: rng.choice(values) for n in rng.sample(names, rng.randrange(1, 4))}
    if "idempotency_key_ttl" in options:
        options["idempotency_key"] = f"fuzz-{rng.random()}"
    return options


def test_fuzzed_triggers_raise_only_typed_errors(engine: Engine) -> None:
    """D-13 (issue 12 item 7): 400 random payload shapes and option values (seed 12) either
    trigger or raise TypeError/ValueError; never another exception."""
    # Given a deterministic generator
    rng = random.Random(12)
    created = 0
    # When 400 random triggers are made
    for _ in range(400):
        payload, options = _random_value(rng, 0), _random_options(rng)
        try:
            fuzz_echo.trigger(payload, **options)
            created += 1
        except TYPED:
            pass
    # Then each either created a run or raised a typed error, and some of each happened
    assert 0 < created < 400
