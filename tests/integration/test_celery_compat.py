"""Plain Celery sends of a trigger task (API.md "The underlying Celery task is
``task.celery_task``…") and duplicate deliveries (DESIGN §1 principle 4)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from celery import chain, group
from celery.signals import task_postrun

import celery_trigger as ct
from celery_trigger._engine.dispatch import publish_record
from tests.helpers import redis_client

from .conftest import Engine, wait_for, wait_for_status

_lock = threading.Lock()
executions: dict[str, int] = {}


def _count(run_id: str) -> None:
    with _lock:
        executions[run_id] = executions.get(run_id, 0) + 1


@ct.task(id="cc-add")
def cc_add(payload: dict[str, int], ctx: ct.Context) -> int:
    _count(ctx.run.id)
    return payload["a"] + payload["b"]


@ct.task(id="cc-double")
def cc_double(payload: int, ctx: ct.Context) -> int:
    _count(ctx.run.id)
    return payload * 2


@ct.task(id="cc-flaky", retry={"max_attempts": 3, "min_timeout_in_ms": 20, "randomize": False})
def cc_flaky(payload: Any, ctx: ct.Context) -> dict[str, int]:
    if ctx.attempt.number < 2:
        raise RuntimeError("first attempt fails")
    return {"attempt": ctx.attempt.number}


@ct.task(id="cc-fails", retry={"max_attempts": 1})
def cc_fails(payload: Any) -> None:
    raise ValueError("plain send failure")


@pytest.fixture
def deliveries() -> Iterator[dict[str, int]]:
    """Counts every Celery delivery that finished (ran, dropped or failed) by task id."""
    seen: dict[str, int] = {}

    def on_postrun(task_id: str | None = None, **_: Any) -> None:
        if task_id is not None:
            with _lock:
                seen[task_id] = seen.get(task_id, 0) + 1

    task_postrun.connect(on_postrun, weak=False)
    try:
        yield seen
    finally:
        task_postrun.disconnect(on_postrun)


def test_delay_creates_a_run_whose_id_is_the_celery_task_id(engine: Engine) -> None:
    """API.md: ``task.celery_task.delay(payload)`` runs with full semantics; the run id is
    the Celery task id and ``AsyncResult.get`` returns the output."""
    with engine.worker():
        # When the Celery task is sent with plain Celery
        result = cc_add.celery_task.delay({"a": 2, "b": 5})
        # Then the Celery result carries the output
        assert result.get(timeout=15) == 7
        run = wait_for_status(result.id)
    # And the run is retrievable by the Celery task id
    assert run.id == result.id and run.status is ct.RunStatus.COMPLETED
    assert run.output == 7 and run.payload == {"a": 2, "b": 5}
    assert run.task_identifier == "cc-add" and executions[result.id] == 1


def test_send_task_by_name_creates_a_run_with_retries(engine: Engine) -> None:
    """API.md: ``app.send_task(id, args=[payload])`` gets the task's retry policy."""
    with engine.worker():
        # When a flaky task is sent by name
        result = engine.app.send_task("cc-flaky", args=[{"x": 1}])
        # Then it is retried like a triggered run and completes on attempt 2
        assert result.get(timeout=15) == {"attempt": 2}
        run = wait_for_status(result.id)
    assert run.status is ct.RunStatus.COMPLETED and run.attempt_count == 2


def test_plain_send_that_fails_records_a_failed_run(engine: Engine) -> None:
    """API.md: a failing plain send ends FAILED in the run record and FAILURE in Celery."""
    with engine.worker():
        result = cc_fails.celery_task.delay({})
        wait_for(result.ready, timeout=15)
        run = wait_for_status(result.id, timeout=15)
    assert run.status is ct.RunStatus.FAILED
    assert run.error is not None and run.error.message == "plain send failure"
    assert result.state == "FAILURE"
    with pytest.raises(Exception, match="plain send failure"):
        result.get(timeout=5)


def test_canvas_chain_and_group_create_runs(engine: Engine) -> None:
    """API.md: canvas primitives work; each step is a run named by its Celery task id."""
    with engine.worker():
        # When a chain passes the first output to the second task
        chained = chain(cc_add.celery_task.s({"a": 1, "b": 2}), cc_double.celery_task.s())()
        assert chained.get(timeout=15) == 6
        # And a group runs two adds
        grouped = group(
            cc_add.celery_task.s({"a": 1, "b": 1}), cc_add.celery_task.s({"a": 2, "b": 2})
        )()
        assert grouped.get(timeout=15) == [2, 4]
        # Then every step has a completed run
        first, second = chained.parent, chained
        assert first is not None
        runs = [wait_for_status(r.id) for r in (first, second, *grouped.results)]
    assert [r.output for r in runs] == [3, 6, 2, 4]
    assert runs[1].payload == 3
    assert all(r.status is ct.RunStatus.COMPLETED for r in runs)


def test_large_payload_stays_in_the_run_record_not_the_message(engine: Engine) -> None:
    """D-5: the Celery message carries the run id and a short repr; the payload (here 600 KiB)
    lives in the run record and reaches the run function intact."""
    # When a run with a 600 KiB payload is triggered
    blob = "y" * (600 * 1024)
    handle = cc_add.trigger({"a": 1, "b": 2, "blob": blob})
    # Then the broker message is small and does not contain the payload
    messages = redis_client(engine.store).lrange(engine.queue, 0, -1)
    assert len(messages) == 1 and len(messages[0]) < 8 * 1024
    assert "yyyyyyyyyy" * 30 not in messages[0]
    # And the run still gets the whole payload
    with engine.worker():
        run = wait_for_status(handle.id)
    assert run.output == 3 and run.payload["blob"] == blob


def test_a_duplicated_message_runs_the_function_once(
    engine: Engine, deliveries: dict[str, int]
) -> None:
    """DESIGN principle 4: two deliveries of one run's message execute it exactly once."""
    # Given a triggered run whose message is published a second time
    handle = cc_add.trigger({"a": 1, "b": 1})
    record = engine.store.get_run(handle.id)
    assert record is not None
    publish_record(engine.trigger, record)
    assert redis_client(engine.store).llen(engine.queue) == 2
    # When a worker consumes both messages
    with engine.worker():
        run = wait_for_status(handle.id)
        wait_for(lambda: deliveries.get(handle.id, 0) >= 2, timeout=15)
    # Then the run function ran once and the run completed once
    assert executions[handle.id] == 1
    assert run.status is ct.RunStatus.COMPLETED and run.attempt_count == 1


def test_run_of_a_plain_send_exists_as_soon_as_delay_returns(engine: Engine) -> None:
    """API.md: ``runs.retrieve(result.id)`` works right after a plain ``.delay``."""
    # Given no worker running
    # When the Celery task is sent with plain Celery
    result = cc_add.celery_task.delay({"a": 1, "b": 2})
    # Then its run already exists, queued, with the payload from the message
    run = ct.runs.retrieve(result.id)
    assert run.status == ct.RunStatus.QUEUED
    assert run.payload == {"a": 1, "b": 2}
    # And a worker runs it exactly as a triggered run
    with engine.worker():
        assert wait_for_status(result.id, "COMPLETED").output == 3


CHAIN_SEEN: list[Any] = []


@ct.task(
    id="cc-slow-retry", retry={"max_attempts": 2, "min_timeout_in_ms": 400, "randomize": False}
)
def cc_slow_retry(payload: dict, ctx: ct.Context) -> int:
    if ctx.attempt.number == 1:
        raise RuntimeError("first attempt fails")
    return int(payload["n"]) + 1


@ct.task(id="cc-chain-tail")
def cc_chain_tail(payload: Any) -> Any:
    CHAIN_SEEN.append(payload)
    return payload


def test_chain_continues_after_a_retry_published_by_the_timer_service(make_engine: Any) -> None:
    """A chain link survives a delivery celery-trigger publishes itself (a long retry goes
    through the timer service), and the plain send keeps its result in the backend."""
    engine = make_engine(warm_retry_threshold=0.1)
    CHAIN_SEEN.clear()
    with engine.worker():
        # Given a chain whose first task fails once and retries through the queue
        result = chain(
            cc_slow_retry.celery_task.s({"n": 1}), cc_chain_tail.celery_task.s()
        ).apply_async()
        # Then the tail runs with the head's output once the retry succeeds
        assert result.get(timeout=20) == 2
        wait_for(lambda: CHAIN_SEEN == [2])
        head = ct.runs.retrieve(result.parent.id)
        assert head.status == ct.RunStatus.COMPLETED and head.attempt_count == 2
