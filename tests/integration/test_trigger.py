"""Triggering options (SEMANTICS §3.1-3.2, D-13, D-14) and idempotency basics (§5.2).

The ``…_and_wait`` functions are covered elsewhere; here only their "outside a run" guard.
TTL and delay checks that must not execute the run use a bare ``TimerService`` (the worker's
bootstep would also consume the run's message).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
import pytest

import celery_trigger as ct
from celery_trigger._engine.timers import TimerService
from tests.helpers import redis_client

from .conftest import Engine, wait_for, wait_for_status

# also run with the broker on another Redis database and on RabbitMQ (tests/brokers.py)
pytestmark = pytest.mark.brokers

SECRET = "test-secret-0123456789abcdef0123456789"

_lock = threading.Lock()
executed: dict[str, list[Any]] = {}


def _record(run_id: str, value: Any) -> None:
    with _lock:
        executed.setdefault(run_id, []).append(value)


@ct.task(id="trg-echo")
def trg_echo(payload: Any, ctx: ct.Context) -> dict[str, Any]:
    _record(ctx.run.id, payload)
    return {"payload": payload, "max_duration": ctx.run.max_duration, "is_test": ctx.run.is_test}


@ct.task(id="trg-other")
def trg_other(payload: Any) -> Any:
    return payload


@ct.task(id="trg-ttl-1m", ttl="1m")
def trg_ttl_1m(payload: Any) -> Any:
    return payload


@ct.task(id="trg-fails", retry={"max_attempts": 1})
def trg_fails(payload: Any) -> Any:
    raise ValueError("always")


@ct.task(id="trg-parent")
def trg_parent(payload: Any, ctx: ct.Context) -> dict[str, Any]:
    child = trg_echo.trigger({"from": ctx.run.id})
    return {"child": child.id, "is_test": ctx.run.is_test}


def _late_run(payload: Any) -> dict[str, Any]:
    return {"late": payload}


@contextlib.contextmanager
def timer_service(engine: Engine) -> Iterator[TimerService]:
    """The worker's timer thread on its own, so queued runs stay unconsumed."""
    service = TimerService(engine.trigger)
    service.start()
    try:
        yield service
    finally:
        service.stop()


def _run_count(engine: Engine) -> int:
    return int(redis_client(engine.store).zcard(engine.store.keys.by_created()))


# handles and guards -------------------------------------------------------------------
def test_trigger_returns_run_id_and_a_one_hour_read_token(engine: Engine) -> None:
    """TRIG-1, D-4: ``run_`` id; HS256 token scoped ``read:runs:<id>`` expiring iat+3600."""
    # When a run is triggered
    handle = trg_echo.trigger({"x": 1})
    # Then its id has the run prefix and the token verifies with the secret
    assert handle.id.startswith("run_") and not handle.is_cached
    assert handle.public_access_token is not None
    claims = jwt.decode(
        handle.public_access_token, SECRET, algorithms=["HS256"], audience="celery-trigger"
    )
    assert claims["scopes"] == [f"read:runs:{handle.id}"]
    assert claims["exp"] == claims["iat"] + 3600


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: trg_echo.trigger_and_wait({}), "trigger_and_wait"),
        (lambda: ct.tasks.trigger_and_wait("trg-echo", {}), "trigger_and_wait"),
        (lambda: trg_echo.batch_trigger_and_wait([{"payload": 1}]), "batch_trigger_and_wait"),
        (
            lambda: ct.tasks.batch_trigger_and_wait("trg-echo", [{"payload": 1}]),
            "batch_trigger_and_wait",
        ),
        (
            lambda: ct.batch.trigger_and_wait([{"id": "trg-echo", "payload": 1}]),
            "batch_trigger_and_wait",
        ),
    ],
)
def test_and_wait_outside_a_run_raises_runtime_error(
    engine: Engine, call: Any, message: str
) -> None:
    """TRIG-2: ``…_and_wait`` outside a run raises with the documented message."""
    # When an …_and_wait function is called from plain code
    with pytest.raises(RuntimeError) as info:
        call()
    # Then the message says where it may be used, and nothing was created
    assert str(info.value) == f"{message} can only be used from inside a task run"
    assert _run_count(engine) == 0


# delay and ttl ------------------------------------------------------------------------
def test_delay_string_creates_a_delayed_run(engine: Engine) -> None:
    """TRIG-9: ``delay="1h"`` → DELAYED with ``delayed_until`` ≈ now + 1 h."""
    # When a run is triggered with a one hour delay
    before = datetime.now(timezone.utc)
    handle = trg_echo.trigger({}, delay="1h")
    # Then it is DELAYED until about an hour from now
    run = ct.runs.retrieve(handle.id)
    assert run.status is ct.RunStatus.DELAYED and run.is_queued
    assert run.delayed_until is not None
    assert abs((run.delayed_until - before).total_seconds() - 3600) < 5


@pytest.mark.parametrize(
    "delay, ttl",
    [
        (3600, timedelta(minutes=2)),
        (timedelta(hours=1), 120),
        (datetime.now(timezone.utc) + timedelta(days=400), "2m"),
    ],
    ids=["seconds", "timedelta", "aware datetime"],
)
def test_delay_and_ttl_accept_numbers_timedeltas_and_datetimes(
    engine: Engine, delay: Any, ttl: Any
) -> None:
    """API.md durations, TRIG-9: seconds, timedelta and aware datetimes all delay the run;
    the TTL is kept for when it enters the queue."""
    handle = trg_echo.trigger({}, delay=delay, ttl=ttl)
    run = ct.runs.retrieve(handle.id)
    assert run.status is ct.RunStatus.DELAYED and run.delayed_until is not None
    assert run.ttl == "2m"


def test_past_datetime_delay_means_no_delay(engine: Engine) -> None:
    """TRIG-9: an aware datetime in the past → QUEUED at once, and it runs."""
    # When a run is triggered with a delay in the past
    handle = trg_echo.trigger({"p": 1}, delay=datetime.now(timezone.utc) - timedelta(seconds=1))
    # Then it is queued immediately
    run = ct.runs.retrieve(handle.id)
    assert run.status is ct.RunStatus.QUEUED and run.delayed_until is None
    # And a worker runs it
    with engine.worker():
        assert wait_for_status(handle.id).status is ct.RunStatus.COMPLETED


def test_short_delay_runs_after_the_delay_via_the_timer_service(engine: Engine) -> None:
    """TRIG-9, §4.2: a DELAYED run is enqueued by the timer at ``delayed_until`` and runs."""
    # Given a worker (its bootstep runs the timer service)
    with engine.worker():
        # When a run is triggered with a one second delay
        handle = trg_echo.trigger({"d": 1}, delay="1s")
        assert ct.runs.retrieve(handle.id).status is ct.RunStatus.DELAYED
        run = wait_for_status(handle.id, timeout=10)
    # Then it completes, having started no earlier than the delay
    assert run.status is ct.RunStatus.COMPLETED
    assert run.started_at is not None and run.created_at is not None
    assert 1.0 <= (run.started_at - run.created_at).total_seconds() < 5


def test_ttl_counts_from_when_a_delayed_run_enters_the_queue(engine: Engine) -> None:
    """TRIG-10, STATUS-2: delay 1 s + ttl 1 s expires no earlier than created + 2 s, never
    executes, and records the TTL error."""
    # Given only the timer service (no worker consumes the queue)
    with timer_service(engine):
        # When a delayed run with a TTL is triggered
        handle = trg_echo.trigger({}, delay="1s", ttl=1)
        # Then it becomes EXPIRED
        run = wait_for_status(handle.id, "EXPIRED", timeout=10)
    assert run.expired_at is not None and run.created_at is not None
    assert (run.expired_at - run.created_at).total_seconds() >= 2.0
    assert run.started_at is None and run.attempt_count == 0
    assert run.error is not None
    assert run.error.message == "Run expired because the TTL (1s) was reached"
    assert run.ttl == "1s" and run.is_completed and run.is_failed
    assert handle.id not in executed


def test_ttl_zero_overrides_the_task_ttl(engine: Engine) -> None:
    """TRIG-11, CFG-6: trigger ``ttl=0`` removes the task's TTL; without it the task's holds."""
    # When the task with ttl "1m" is triggered with and without ttl=0
    without = trg_ttl_1m.trigger({}, ttl=0)
    default = trg_ttl_1m.trigger({})
    # Then only the second has a TTL
    assert ct.runs.retrieve(without.id).ttl is None
    assert ct.runs.retrieve(default.id).ttl == "1m"


def test_development_environment_defaults_ttl_to_ten_minutes(make_engine: Any) -> None:
    """TRIG-11, D-11: a DEVELOPMENT run triggered without any TTL has ttl "10m"."""
    # Given a DEVELOPMENT engine
    make_engine(environment="DEVELOPMENT")
    # When a task without TTL is triggered
    handle = trg_echo.trigger({})
    # Then it has the 10 minute default
    assert ct.runs.retrieve(handle.id).ttl == "10m"


def test_non_integer_numeric_ttl_is_rejected(engine: Engine) -> None:
    """TRIG-12, D-13: ``ttl=1.5`` is a ValueError and creates nothing."""
    with pytest.raises(ValueError, match="whole number"):
        trg_echo.trigger({}, ttl=1.5)
    assert _run_count(engine) == 0


BUSY_GATE = threading.Event()


@ct.task(id="trg-busy", queue=ct.queue(name="trg-busy", concurrency_limit=1))
def trg_busy(payload: Any, ctx: ct.Context) -> None:
    _record("busy-order", payload["name"])
    if payload.get("gate"):
        BUSY_GATE.wait(20)


@pytest.mark.parametrize("priority, first", [(1.0, "B"), (0.1, "A")])
def test_priority_reorders_within_a_busy_queue(engine: Engine, priority: float, first: str) -> None:
    """TRIG-13 (scaled 1:20): in a busy limit-1 queue, A (no priority) is triggered at t=0 and
    B at t=0.4 s; with priority 1 s B starts first, with priority 0.1 s A does."""
    executed.pop("busy-order", None)
    BUSY_GATE.clear()
    with engine.worker(concurrency=4):
        # Given a limit-1 queue whose slot is held
        blocker = trg_busy.trigger({"name": "blocker", "gate": True})
        wait_for_status(blocker.id, "EXECUTING")
        # When A is triggered, and B 0.4 s later with a priority
        a = trg_busy.trigger({"name": "A"})
        a_queued = int(engine.store.get_run(a.id)["queued_at"])
        wait_for(lambda: ct.queues.retrieve("trg-busy").queued == 1)
        wait_for(lambda: datetime.now(timezone.utc).timestamp() * 1000 >= a_queued + 400)
        b = trg_busy.trigger({"name": "B"}, priority=priority)
        wait_for(lambda: ct.queues.retrieve("trg-busy").queued == 2)
        BUSY_GATE.set()
        for handle in (blocker, a, b):
            assert wait_for_status(handle.id).status == ct.RunStatus.COMPLETED
    # Then the run with the better (queued time - priority) started first
    assert executed["busy-order"][0] == "blocker"
    assert executed["busy-order"][1] == first


# tags and metadata --------------------------------------------------------------------
def test_tag_rules_at_trigger(engine: Engine) -> None:
    """TRIG-14, D-14: string → list, blanks dropped, duplicates removed, 64 chars allowed."""
    # When runs are triggered with various tag shapes
    single = trg_echo.trigger({}, tags="user_1")
    blank = trg_echo.trigger({}, tags=["a", " ", ""])
    dupes = trg_echo.trigger({}, tags=["a", "b", "a", *[f"t{i}" for i in range(8)], "b"])
    longest = trg_echo.trigger({}, tags=["x" * 64])
    # Then the stored tags follow the rules
    assert ct.runs.retrieve(single.id).tags == ["user_1"]
    assert ct.runs.retrieve(blank.id).tags == ["a"]
    assert ct.runs.retrieve(dupes.id).tags == ["a", "b", *[f"t{i}" for i in range(8)]]
    assert ct.runs.retrieve(longest.id).tags == ["x" * 64]


def test_eleven_tags_or_a_65_character_tag_is_rejected(engine: Engine) -> None:
    """TRIG-14, D-14: more than 10 distinct tags or a tag over 64 characters creates nothing."""
    with pytest.raises(ValueError, match="Runs can only have 10 tags, you're trying to set 11"):
        trg_echo.trigger({}, tags=[f"t{i}" for i in range(11)])
    with pytest.raises(ValueError, match="limit is 64"):
        trg_echo.trigger({}, tags=["x" * 65])
    assert _run_count(engine) == 0


def test_metadata_size_limit_is_exact(engine: Engine) -> None:
    """TRIG-16, D-5: metadata JSON of 262,144 bytes is accepted, 262,145 rejected."""
    # Given metadata documents of exactly the limit and one byte over ({"k":"…"} is 8 + n)
    at_limit = {"k": "a" * (262_144 - 8)}
    over = {"k": "a" * (262_145 - 8)}
    # When both are triggered
    with pytest.raises(ValueError, match="Metadata exceeds maximum size of 262144 bytes"):
        trg_echo.trigger({}, metadata=over)
    assert _run_count(engine) == 0
    handle = trg_echo.trigger({}, metadata=at_limit)
    # Then the one at the limit is stored
    assert ct.runs.retrieve(handle.id).metadata == at_limit


def test_child_run_does_not_inherit_tags_and_records_its_parent(engine: Engine) -> None:
    """TRIG-15, §3.2: a child triggered inside a tagged run has no tags; parent is set."""
    # Given a worker
    with engine.worker():
        # When a tagged parent triggers a child without tags
        parent = trg_parent.trigger({}, tags=["x"])
        child_id = wait_for_status(parent.id).output["child"]
        child = wait_for_status(child_id)
    # Then the child has no tags and points at its parent
    assert child.tags == []
    assert child.parent_id == parent.id and child.root_id == parent.id
    assert child.status is ct.RunStatus.COMPLETED


def test_child_of_a_test_run_is_a_test_run(engine: Engine) -> None:
    """TRIG-20: a run triggered from inside a test run has ``is_test`` true."""
    # Given a queued parent marked as a test run before any worker sees it
    parent = trg_parent.trigger({})
    redis_client(engine.store).hset(engine.store.keys.run(parent.id), "is_test", "1")
    # When a worker runs it
    with engine.worker():
        run = wait_for_status(parent.id)
        child = wait_for_status(run.output["child"])
    # Then the parent saw itself as a test run and its child inherited the flag
    assert run.output["is_test"] is True
    assert child.is_test is True and child.output["is_test"] is True


# queues and other options -------------------------------------------------------------
def test_unknown_queue_name_leaves_the_run_pending_version(engine: Engine) -> None:
    """TRIG-17: ``queue="does-not-exist"`` → PENDING_VERSION, also once a worker that defines
    the task (but not that queue) has started."""
    # Given a run triggered into a queue no code defines
    handle = trg_echo.trigger({}, queue="does-not-exist")
    assert ct.runs.retrieve(handle.id).status is ct.RunStatus.PENDING_VERSION
    # When a worker that defines the task starts and runs other work
    with engine.worker():
        control = trg_echo.trigger({})
        wait_for_status(control.id, "COMPLETED")
        # Then the run still waits for its queue
        run = ct.runs.retrieve(handle.id)
    assert run.status is ct.RunStatus.PENDING_VERSION and run.is_queued
    assert handle.id not in executed


def test_unknown_task_id_waits_until_a_worker_defines_it(engine: Engine) -> None:
    """TRIG-22, D-18: an unknown task id gets a handle and PENDING_VERSION; when a worker
    that defines the task starts, the run executes."""
    # Given a trigger by id of a task nobody has defined yet
    task_id = f"trg-late-{uuid.uuid4().hex[:8]}"
    handle = ct.tasks.trigger(task_id, {"n": 1})
    assert handle.id.startswith("run_")
    assert ct.runs.retrieve(handle.id).status is ct.RunStatus.PENDING_VERSION
    # When the task becomes defined and a worker starts
    ct.task(id=task_id, run=_late_run)
    with engine.worker():
        run = wait_for_status(handle.id)
    # Then the run completes
    assert run.status is ct.RunStatus.COMPLETED and run.output == {"late": {"n": 1}}


def test_concurrency_key_number_is_stored_as_a_string(engine: Engine) -> None:
    """TRIG-18: ``concurrency_key=123`` is stored as ``"123"``."""
    handle = trg_echo.trigger({}, concurrency_key=123)
    assert ct.runs.retrieve(handle.id).concurrency_key == "123"


def test_max_duration_below_five_seconds_is_applied_as_five(engine: Engine) -> None:
    """TRIG-19: ``max_duration=2`` is stored and seen by the run as 5."""
    # Given a worker
    with engine.worker():
        # When a run is triggered with max_duration 2
        handle = trg_echo.trigger({}, max_duration=2)
        run = wait_for_status(handle.id)
    # Then both the record and ctx show 5
    assert run.max_duration == 5 and run.output["max_duration"] == 5


# idempotency --------------------------------------------------------------------------
def test_same_key_twice_returns_the_cached_run(engine: Engine) -> None:
    """IDEM-3, IDEM-7: the repeat returns the same id with is_cached; its payload is unused."""
    # When the task is triggered twice with one key (no worker: the first stays QUEUED)
    first = trg_echo.trigger({"n": 1}, idempotency_key="k")
    second = trg_echo.trigger({"n": 2}, idempotency_key="k")
    # Then the second is the cached first run and only one run exists
    assert second.id == first.id and second.is_cached and not first.is_cached
    assert [r.id for r in ct.runs.list()] == [first.id]
    # And when it runs, only the first payload is used, once
    with engine.worker():
        run = wait_for_status(first.id)
    assert run.payload == {"n": 1} and executed[first.id] == [{"n": 1}]


def test_same_key_on_a_delayed_run_returns_it(engine: Engine) -> None:
    """IDEM-7: a DELAYED owner is returned; the second payload is not stored."""
    first = trg_echo.trigger({"n": 1}, idempotency_key="d", delay="1h")
    second = trg_echo.trigger({"n": 2}, idempotency_key="d")
    assert second.id == first.id and second.is_cached
    assert ct.runs.retrieve(first.id).payload == {"n": 1}
    assert _run_count(engine) == 1


@pytest.mark.parametrize("status", ["FAILED", "CRASHED", "SYSTEM_FAILURE", "TIMED_OUT"])
def test_key_still_held_by_a_failed_owner_is_taken_over(engine: Engine, status: str) -> None:
    """IDEM-6, §5.2 (lazy clearing): a key whose owner ended failed but still holds it goes
    to a new run."""
    # Given an owner run that ended failed while its key was left in place
    first = trg_echo.trigger({"n": 1}, idempotency_key="lazy")
    redis_client(engine.store).hset(engine.store.keys.run(first.id), "status", status)
    # When the key is used again
    second = trg_echo.trigger({"n": 2}, idempotency_key="lazy")
    third = trg_echo.trigger({"n": 3}, idempotency_key="lazy")
    # Then a new run owns the key and a third trigger finds it
    assert second.id != first.id and not second.is_cached
    assert third.id == second.id and third.is_cached
    assert ct.runs.retrieve(second.id).payload == {"n": 2}


def test_same_key_on_two_tasks_creates_two_runs(engine: Engine) -> None:
    """IDEM-4: keys are per task."""
    a = trg_echo.trigger({}, idempotency_key="shared")
    b = trg_other.trigger({}, idempotency_key="shared")
    assert a.id != b.id and not b.is_cached
    assert _run_count(engine) == 2


def test_failed_or_expired_owner_is_replaced_completed_or_canceled_is_cached(
    engine: Engine,
) -> None:
    """IDEM-6: FAILED/EXPIRED owners give a new run; COMPLETED/CANCELED owners are returned."""
    # Given an expired owner (timer service only) and a canceled one
    with timer_service(engine):
        expired = trg_echo.trigger({}, idempotency_key="e", ttl=1)
        wait_for_status(expired.id, "EXPIRED", timeout=10)
    canceled = trg_echo.trigger({}, idempotency_key="c", delay="1h")
    ct.runs.cancel(canceled.id)
    # And a failed owner and a completed owner (on a worker)
    with engine.worker():
        failed = trg_fails.trigger({}, idempotency_key="f")
        completed = trg_echo.trigger({}, idempotency_key="ok")
        assert wait_for_status(failed.id).status is ct.RunStatus.FAILED
        assert wait_for_status(completed.id).status is ct.RunStatus.COMPLETED
        # When each key is used again
        again = {
            "expired": trg_echo.trigger({}, idempotency_key="e"),
            "failed": trg_fails.trigger({}, idempotency_key="f"),
            "completed": trg_echo.trigger({}, idempotency_key="ok"),
            "canceled": trg_echo.trigger({}, idempotency_key="c"),
        }
        wait_for(lambda: ct.runs.retrieve(again["failed"].id).is_completed)
    # Then failed and expired owners were replaced by new runs
    assert again["expired"].id != expired.id and not again["expired"].is_cached
    assert again["failed"].id != failed.id and not again["failed"].is_cached
    # And completed and canceled owners were returned as cached
    assert again["completed"].id == completed.id and again["completed"].is_cached
    assert again["canceled"].id == canceled.id and again["canceled"].is_cached
    assert ct.runs.retrieve(canceled.id).status is ct.RunStatus.CANCELED


@ct.task(id="tr-late-queue-user", queue=ct.queue(name="tr-late-queue"))
def tr_late_queue_user(payload: Any) -> str:
    return "ran"


def test_run_for_an_unknown_queue_waits_until_a_worker_defines_the_queue(make_engine: Any) -> None:
    """TRIG-17, D-18: a run sent to a queue nobody defines waits in PENDING_VERSION and is
    released when a worker that defines that queue starts."""
    engine = make_engine()
    # Given a trigger to a queue that is not defined anywhere yet (store knows no queues)
    handle = ct.tasks.trigger("tr-late-queue-user", None, queue="tr-late-queue-other")
    assert ct.runs.retrieve(handle.id).status == ct.RunStatus.PENDING_VERSION
    # When a worker starts whose definitions do not include that queue, it stays pending
    with engine.worker():
        assert ct.runs.retrieve(handle.id).status == ct.RunStatus.PENDING_VERSION
    # When the queue becomes known (a worker defines it) the run is released and runs
    engine.store.put_queue("tr-late-queue-other", {"concurrency_limit": ""})
    with engine.worker():
        assert wait_for_status(handle.id, "COMPLETED").output == "ran"
