"""Bad input is a typed error at the call, with nothing written or published (API.md, D-5,
D-13, D-14): no run key, no index entry, no broker message."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

import celery_trigger as ct
from celery_trigger import _definition
from tests.helpers import redis_client

from .conftest import Engine, wait_for_status


@ct.task(id="bad-echo")
def bad_echo(payload: Any) -> Any:
    return payload


@ct.task(id="bad-big-output")
def bad_big_output(payload: int) -> str:
    return "x" * payload


def _nothing_written(engine: Engine) -> None:
    client = redis_client(engine.store)
    assert client.zcard(engine.store.keys.by_created()) == 0
    assert list(client.scan_iter(f"{engine.prefix}:run:*")) == []
    assert list(client.scan_iter(f"{engine.prefix}:idem:*")) == []
    assert client.zcard(engine.store.keys.timers()) == 0
    assert client.llen(engine.queue) == 0


BAD_TRIGGERS: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    (
        "unknown option",
        lambda: bad_echo.trigger({}, delya="1h"),
        TypeError,
        "unknown trigger option",
    ),
    (
        "unknown option by id",
        lambda: ct.tasks.trigger("bad-echo", {}, ttl_s=3),
        TypeError,
        "unknown trigger option",
    ),
    ("delay banana", lambda: bad_echo.trigger({}, delay="banana"), ValueError, "delay"),
    ("delay 1.5h", lambda: bad_echo.trigger({}, delay="1.5h"), ValueError, "delay"),
    ("delay with space", lambda: bad_echo.trigger({}, delay="1 h"), ValueError, "delay"),
    (
        "naive datetime",
        lambda: bad_echo.trigger({}, delay=datetime(2030, 1, 1)),
        ValueError,
        "timezone-aware",
    ),
    ("delay wrong type", lambda: bad_echo.trigger({}, delay=[1]), TypeError, "delay"),
    ("ttl banana", lambda: bad_echo.trigger({}, ttl="banana"), ValueError, "ttl"),
    ("ttl negative", lambda: bad_echo.trigger({}, ttl=-5), ValueError, "ttl"),
    ("ttl fraction", lambda: bad_echo.trigger({}, ttl=1.5), ValueError, "ttl"),
    (
        "idempotency ttl",
        lambda: bad_echo.trigger({}, idempotency_key="k", idempotency_key_ttl="1h30m"),
        ValueError,
        "idempotency_key_ttl",
    ),
    (
        "idempotency key type",
        lambda: bad_echo.trigger({}, idempotency_key=5),
        TypeError,
        "idempotency key",
    ),
    ("max duration", lambda: bad_echo.trigger({}, max_duration="soon"), ValueError, "max_duration"),
    (
        "11 tags",
        lambda: bad_echo.trigger({}, tags=[f"t{i}" for i in range(11)]),
        ValueError,
        "10 tags",
    ),
    ("65-char tag", lambda: bad_echo.trigger({}, tags=["x" * 65]), ValueError, "64"),
    ("tags type", lambda: bad_echo.trigger({}, tags=123), TypeError, "tags"),
    (
        "metadata size",
        lambda: bad_echo.trigger({}, metadata={"k": "a" * 262_200}),
        ValueError,
        "Metadata exceeds maximum size",
    ),
    ("metadata type", lambda: bad_echo.trigger({}, metadata=["x"]), TypeError, "metadata"),
    (
        "metadata not JSON",
        lambda: bad_echo.trigger({}, metadata={"a": object()}),
        TypeError,
        r"metadata\['a'\]",
    ),
    (
        "payload not JSON",
        lambda: bad_echo.trigger({"a": {"b": [1, object()]}}),
        TypeError,
        r"payload\['a'\]\['b'\]\[1\]",
    ),
    (
        "payload not JSON by id",
        lambda: ct.tasks.trigger("bad-echo", {"s": {1, object()}}),
        TypeError,
        r"payload\['s'\]",
    ),
    (
        "machine preset",
        lambda: bad_echo.trigger({}, machine="huge-9x"),
        ValueError,
        "unknown machine preset",
    ),
    (
        "concurrency key type",
        lambda: bad_echo.trigger({}, concurrency_key=["a"]),
        TypeError,
        "concurrency_key",
    ),
    (
        "concurrency key float",
        lambda: bad_echo.trigger({}, concurrency_key=1.5),
        TypeError,
        "concurrency_key",
    ),
    (
        "max attempts type",
        lambda: bad_echo.trigger({}, max_attempts="3"),
        TypeError,
        "max_attempts",
    ),
    ("priority type", lambda: bad_echo.trigger({}, priority="high"), TypeError, "priority"),
    # QUEUE-10 sanitises names ("bad name!" is "badname"); one with nothing left is an error
    ("queue name", lambda: bad_echo.trigger({}, queue="!! ?"), ValueError, "queue name"),
    ("queue type", lambda: bad_echo.trigger({}, queue=7), TypeError, "queue"),
]


@pytest.mark.parametrize(
    "call, error, match", [c[1:] for c in BAD_TRIGGERS], ids=[c[0] for c in BAD_TRIGGERS]
)
def test_bad_trigger_input_raises_and_writes_nothing(
    engine: Engine, call: Callable[[], Any], error: type[Exception], match: str
) -> None:
    """D-13, D-14, TRIG-12, TRIG-14, TRIG-16, API.md: a typed error at the call, nothing
    written or published."""
    # When a trigger is made with one bad argument
    with pytest.raises(error, match=match):
        call()
    # Then no run, key, timer or message exists
    _nothing_written(engine)


def test_batch_with_one_bad_item_creates_nothing(engine: Engine) -> None:
    """TRIG-8, §3.2: one bad item → BatchTriggerError naming it; no run of the batch exists."""
    # When a batch has one item with a bad option among good ones
    items = [{"payload": 1}, {"payload": 2, "options": {"delay": "banana"}}, {"payload": 3}]
    with pytest.raises(ct.BatchTriggerError, match="item 1") as info:
        bad_echo.batch_trigger(items)
    # Then the cause is the option error and nothing was written
    assert isinstance(info.value.cause, ValueError) and info.value.phase == "create"
    assert list(redis_client(engine.store).scan_iter(f"{engine.prefix}:batch:*")) == []
    _nothing_written(engine)


@pytest.mark.parametrize(
    "items",
    [
        [{"payload": 1, "opts": {}}],
        [42],
        [{"payload": 1, "options": "fast"}],
    ],
    ids=["unknown item key", "not a dict", "options not a dict"],
)
def test_malformed_batch_items_are_rejected(engine: Engine, items: list[Any]) -> None:
    """§3.1: items are ``{"payload", "options"}`` dicts or BatchItem; anything else raises."""
    with pytest.raises((TypeError, ValueError)):
        bad_echo.batch_trigger(items)
    _nothing_written(engine)


def test_oversized_payload_is_rejected_with_a_hint_to_pass_a_url(make_engine: Any) -> None:
    """D-5: a payload over the limit is a ValueError suggesting a URL; nothing written."""
    # Given a 1,000-byte payload limit
    engine = make_engine(max_payload_bytes=1000)
    # When a larger payload is triggered (directly and in a batch)
    with pytest.raises(ValueError, match="URL"):
        bad_echo.trigger({"blob": "x" * 1000})
    with pytest.raises(ct.BatchTriggerError, match="URL"):
        bad_echo.batch_trigger([{"payload": "x" * 1000}])
    # Then nothing was written; a payload within the limit is accepted
    _nothing_written(engine)
    handle = bad_echo.trigger({"blob": "x" * 900})
    assert ct.runs.retrieve(handle.id).payload == {"blob": "x" * 900}


def test_output_over_the_limit_fails_the_run(make_engine: Any) -> None:
    """D-5, §18: an output over ``max_output_bytes`` ends the run FAILED, TASK_OUTPUT_ERROR."""
    # Given a 1,000-byte output limit and a worker
    engine = make_engine(max_output_bytes=1000)
    with engine.worker():
        # When one run returns 2,000 bytes and another 500
        big = bad_big_output.trigger(2000)
        small = bad_big_output.trigger(500)
        big_run, small_run = wait_for_status(big.id), wait_for_status(small.id)
    # Then the big one failed with the output error and the small one completed
    assert big_run.status is ct.RunStatus.FAILED and big_run.output is None
    assert big_run.error is not None and big_run.error.name == "TASK_OUTPUT_ERROR"
    assert small_run.status is ct.RunStatus.COMPLETED and small_run.output == "x" * 500


@pytest.mark.parametrize(
    "options, error",
    [
        ({"retry": {"max_attempts": 0}}, ValueError),
        ({"retry": {"max_attempts": 2, "tries": 3}}, ValueError),
        ({"retry": {"max_attempts": "3"}}, ValueError),
        ({"retry": ["x"]}, TypeError),
        ({"machine": "huge-9x"}, ValueError),
        ({"ttl": "banana"}, ValueError),
        ({"max_duration": "soon"}, ValueError),
        ({"queue": {"name": "q", "limit": 1}}, ValueError),
        ({"on_success": "not callable"}, TypeError),
    ],
    ids=[
        "max_attempts 0",
        "unknown retry key",
        "max_attempts str",
        "retry type",
        "machine",
        "ttl",
        "max_duration",
        "queue key",
        "hook",
    ],
)
def test_invalid_task_definition_raises_at_definition_time(
    options: dict[str, Any], error: type[Exception]
) -> None:
    """§1.2, API.md: invalid ``@ct.task`` options raise when the task is defined; nothing is
    registered."""
    # When a task is defined with one invalid option
    task_id = f"bad-def-{uuid.uuid4().hex[:8]}"
    with pytest.raises(error):
        ct.task(id=task_id, **options)(bad_echo.fn)
    # Then no definition exists under its id
    assert _definition.get(task_id) is None


def test_schema_task_needs_a_schema() -> None:
    """API.md: ``schema_task`` without a usable schema raises at definition time."""
    with pytest.raises(TypeError):
        ct.schema_task(id=f"bad-schema-{uuid.uuid4().hex[:8]}", schema=None)
