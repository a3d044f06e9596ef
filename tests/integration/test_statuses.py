"""Run statuses and transitions (SEMANTICS §4, decision D-6)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import celery_trigger as ct
from celery_trigger._engine.timers import TimerService
from tests.helpers import redis_client

from .conftest import Engine, wait_for, wait_for_status

_lock = threading.Lock()
gates: dict[str, threading.Event] = {}
executed: list[str] = []


def _gate(run_id: str) -> threading.Event:
    with _lock:
        return gates.setdefault(run_id, threading.Event())


@ct.task(id="st-gated")
def st_gated(payload: Any, ctx: ct.Context) -> str:
    """Holds its attempt open until the test opens the run's gate."""
    _gate(ctx.run.id).wait(15)
    return "done"


@ct.task(id="st-record")
def st_record(payload: Any, ctx: ct.Context) -> str:
    with _lock:
        executed.append(ctx.run.id)
    return "ran"


@ct.task(id="st-throws", retry={"max_attempts": 1})
def st_throws(payload: Any) -> None:
    raise RuntimeError("plain failure")


@ct.task(
    id="st-busy",
    max_duration=5,
    retry={"max_attempts": 3, "min_timeout_in_ms": 50, "randomize": False},
)
def st_busy(payload: Any) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        time.sleep(0.02)


@contextlib.contextmanager
def timer_service(engine: Engine) -> Iterator[None]:
    service = TimerService(engine.trigger)
    service.start()
    try:
        yield
    finally:
        service.stop()


def test_run_goes_queued_executing_completed_and_finishes_only_at_the_end(engine: Engine) -> None:
    """STATUS-1: QUEUED → EXECUTING → COMPLETED; ``finished_at`` only on the final status."""
    # Given a run triggered while no worker runs
    handle = st_gated.trigger({})
    queued = ct.runs.retrieve(handle.id)
    assert queued.status is ct.RunStatus.QUEUED and queued.is_queued
    assert queued.started_at is None and queued.finished_at is None
    with engine.worker():
        # When a worker picks it up
        executing = wait_for_status(handle.id, "EXECUTING")
        # Then it is executing, started and not finished
        assert executing.is_executing and not executing.is_completed
        assert executing.started_at is not None and executing.finished_at is None
        # When the attempt returns
        _gate(handle.id).set()
        done = wait_for_status(handle.id)
    # Then it is COMPLETED with a finish time
    assert done.status is ct.RunStatus.COMPLETED
    assert done.finished_at is not None and done.finished_at >= done.started_at


def test_a_throwing_run_ends_failed(engine: Engine) -> None:
    """STATUS-2: the only attempt throws → FAILED."""
    with engine.worker():
        run = wait_for_status(st_throws.trigger({}).id)
    assert run.status is ct.RunStatus.FAILED and run.is_failed
    assert run.error is not None and run.error.message == "plain failure"


@pytest.mark.slow
def test_a_run_over_max_duration_ends_timed_out_without_retry(engine: Engine) -> None:
    """STATUS-2, TASK-26: a run busy past ``max_duration`` (5 s) ends TIMED_OUT, 1 attempt."""
    with engine.worker():
        run = wait_for_status(st_busy.trigger({}).id, timeout=20)
    assert run.status is ct.RunStatus.TIMED_OUT and run.is_completed
    assert run.attempt_count == 1
    assert run.error is not None and run.error.name == "MAX_DURATION_EXCEEDED"


def test_a_queued_run_past_its_ttl_ends_expired(engine: Engine) -> None:
    """STATUS-2: TTL passes while QUEUED → EXPIRED, never started, TTL error message."""
    # Given only the timer service, so nothing consumes the run
    with timer_service(engine):
        handle = st_record.trigger({}, ttl="1s")
        run = wait_for_status(handle.id, "EXPIRED", timeout=10)
    # Then it expired without starting
    assert run.started_at is None and run.expired_at is not None
    assert run.error is not None
    assert run.error.message == "Run expired because the TTL (1s) was reached"
    assert handle.id not in executed


def test_an_expired_message_delivered_late_does_not_run(engine: Engine) -> None:
    """STATUS-2, §4.2: a message picked up after the TTL (timer not yet fired) expires the run
    instead of running it."""
    # Given a queued run whose TTL passed while no worker and no timer ran
    handle = st_record.trigger({}, ttl="1s")
    redis_client(engine.store).zrem(engine.store.keys.timers(), f"ttl|{handle.id}")
    created = ct.runs.retrieve(handle.id).created_at
    assert created is not None
    wait_for(lambda: time.time() >= created.timestamp() + 1.05, timeout=5)
    # When a worker receives its message
    with engine.worker():
        run = wait_for_status(handle.id)
    # Then the run is EXPIRED and never executed
    assert run.status is ct.RunStatus.EXPIRED and run.started_at is None
    assert handle.id not in executed


def test_cancel_a_delayed_run_and_it_never_executes(engine: Engine) -> None:
    """STATUS-5: a cancelled DELAYED run is CANCELED and does not run after its delay."""
    with engine.worker():
        # Given a run delayed by one second
        handle = st_record.trigger({}, delay="1s")
        # When it is cancelled while delayed
        assert ct.runs.cancel(handle.id) == {"id": handle.id}
        run = ct.runs.retrieve(handle.id)
        assert run.status is ct.RunStatus.CANCELED and run.is_cancelled
        # And a control run with the same delay, triggered later, has completed
        control = st_record.trigger({}, delay="1s")
        wait_for_status(control.id, "COMPLETED", timeout=10)
        after = ct.runs.retrieve(handle.id)
    # Then the cancelled run is still CANCELED and never executed
    assert after.status is ct.RunStatus.CANCELED and after.started_at is None
    assert after.error is not None and after.error.message == "Canceled by user"
    assert handle.id not in executed and control.id in executed


def test_final_runs_are_not_changed_by_cancel_or_reschedule(engine: Engine) -> None:
    """STATUS-6: cancel of a COMPLETED (or FAILED) run leaves it as it is."""
    # Given a completed run and a failed run
    with engine.worker():
        completed = wait_for_status(st_record.trigger({}).id)
        failed = wait_for_status(st_throws.trigger({}).id)
    for before in (completed, failed):
        # When it is cancelled and rescheduled
        ct.runs.cancel(before.id)
        with pytest.raises(ct.InvalidRunStateError):
            ct.runs.reschedule(before.id, delay="1h")
        # Then status, output, error and finish time are unchanged
        after = ct.runs.retrieve(before.id)
        assert after.status is before.status
        assert after.output == before.output and after.finished_at == before.finished_at
        assert (after.error and after.error.message) == (before.error and before.error.message)


@pytest.mark.parametrize("status", list(ct.RunStatus))
def test_every_status_round_trips_through_retrieve_and_list(
    engine: Engine, status: ct.RunStatus
) -> None:
    """STATUS-7, D-6: each of the 13 statuses is representable, read back by retrieve and
    selected by the ``runs.list`` status filter; ``is_completed`` ⇔ final."""
    # Given two runs, one of them stored with the status under test
    target, other = st_record.batch_trigger([{"payload": 1}, {"payload": 2}]).runs
    client = redis_client(engine.store)
    client.hset(engine.store.keys.run(target), "status", status.value)
    other_status = (
        ct.RunStatus.QUEUED if status is not ct.RunStatus.QUEUED else ct.RunStatus.COMPLETED
    )
    client.hset(engine.store.keys.run(other), "status", other_status.value)
    # When it is read back and listed by status
    run = ct.runs.retrieve(target)
    listed = [r.id for r in ct.runs.list(status=status)]
    listed_by_value = [r.id for r in ct.runs.list(status=[status.value])]
    # Then the status and the helper flags agree
    assert run.status is status
    assert listed == [target] and listed_by_value == [target]
    assert run.is_completed == status.is_final
    assert run.is_success == (status is ct.RunStatus.COMPLETED)
    assert run.is_failed == (status.is_final and status is not ct.RunStatus.COMPLETED)
    assert run.is_queued == (
        status in {ct.RunStatus.QUEUED, ct.RunStatus.DELAYED, ct.RunStatus.PENDING_VERSION}
    )
