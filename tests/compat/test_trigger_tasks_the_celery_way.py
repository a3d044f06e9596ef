"""Issue 11, items 1 to 3: a celery-trigger task sent the Celery way keeps Celery's message
options (ETA/countdown, expires, canvas fields) on the Redis broker and on RabbitMQ, and a
run whose task no live worker serves is never left QUEUED with nothing due."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from celery import chain, chord, group
from celery.signals import task_prerun

import celery_trigger as ct
from celery_trigger import _celery
from celery_trigger._engine import presence
from celery_trigger._engine.timers import TimerService
from celery_trigger._vocab import TimerKind

from .conftest import Compat, wait_for, wait_for_status

_lock = threading.Lock()
STARTED: dict[str, float] = {}
CALLS: dict[str, int] = {}


def _seen(run_id: str) -> None:
    with _lock:
        STARTED.setdefault(run_id, time.time())
        CALLS[run_id] = CALLS.get(run_id, 0) + 1


@ct.task(id="compat-add")
def compat_add(payload: dict[str, int], ctx: ct.Context) -> int:
    _seen(ctx.run.id)
    return payload["a"] + payload["b"]


@ct.task(id="compat-park")
def compat_park(payload: int, ctx: ct.Context) -> int:
    """Parks (a wait over the threshold) before returning twice its payload."""
    ct.wait.for_(seconds=0.3)
    return payload * 2


@ct.task(id="compat-sum")
def compat_sum(payload: list[int]) -> int:
    return sum(payload)


@ct.task(
    id="compat-retry-queue",
    retry={"max_attempts": 2, "min_timeout_in_ms": 300, "randomize": False},
)
def compat_retry_queue(payload: int, ctx: ct.Context) -> int:
    """Fails once; its retry (over the warm threshold) goes through the queue."""
    if ctx.attempt.number == 1:
        raise RuntimeError("first attempt fails")
    return payload + 10


@ct.task(id="compat-orphan")
def compat_orphan(payload: int) -> int:
    return payload + 1


# ETA and expires (issue 11 item 1) ---------------------------------------------------------
def test_countdown_makes_the_run_delayed_and_it_runs_at_the_eta(make_app: Any) -> None:
    """A countdown longer than the publish watchdog: the run is DELAYED until the ETA (the
    watchdog follows the ETA), runs once, not before the ETA; the worker still holds the
    Celery ETA message (``inspect().scheduled()``) as for any task."""
    compat: Compat = make_app(publish_watchdog=1.0)
    with compat.worker():
        # When the task is sent with a countdown of 3 s (watchdog: 1 s)
        sent = time.time()
        result = compat_add.celery_task.apply_async(args=[{"a": 1, "b": 2}], countdown=3)
        # Then the run is DELAYED until the ETA, with no publish watchdog before it
        run = ct.runs.retrieve(result.id)
        assert run.status is ct.RunStatus.DELAYED
        assert run.delayed_until is not None
        assert abs(run.delayed_until.timestamp() - (sent + 3)) < 1.0
        store = compat.trigger.store
        assert store.timer_due(TimerKind.PUBLISH.member(result.id)) is None
        # And the worker holds the Celery ETA message like any countdown
        wait_for(lambda: _scheduled_ids(compat) == {result.id}, timeout=10)
        # And the run executes once, at the ETA, with the Celery result
        assert result.get(timeout=20) == 3
        done = wait_for_status(result.id)
    assert done.status is ct.RunStatus.COMPLETED and CALLS[result.id] == 1
    assert STARTED[result.id] >= run.delayed_until.timestamp() - 0.05


def _scheduled_ids(compat: Compat) -> set[str]:
    replies = compat.app.control.inspect(timeout=1.0).scheduled() or {}
    return {entry["request"]["id"] for entries in replies.values() for entry in entries}


def test_expires_in_the_past_ends_the_run_expired(make_app: Any) -> None:
    """``expires`` is the run's TTL: the worker discards the expired message (REVOKED) and
    the run ends EXPIRED instead of staying QUEUED; it never runs."""
    compat: Compat = make_app(publish_watchdog=1.0)
    with compat.worker():
        # When the task is sent already expired
        past = datetime.now(timezone.utc) - timedelta(seconds=5)
        result = compat_add.celery_task.apply_async(args=[{"a": 1, "b": 1}], expires=past)
        # Then the run expires and the function never runs
        run = wait_for_status(result.id, timeout=15)
        assert run.status is ct.RunStatus.EXPIRED
        wait_for(lambda: result.state == "REVOKED", timeout=10)
    assert result.id not in CALLS


def test_priority_and_headers_stay_on_later_deliveries(make_app: Any) -> None:
    """A retry through the queue keeps the first message's custom headers and priority."""
    compat: Compat = make_app(warm_retry_threshold=0.1)
    seen: list[tuple[Any, Any]] = []

    def on_prerun(task: Any = None, **_: Any) -> None:
        if task is not None and task.name == "compat-retry-queue":
            seen.append((task.request.get("tenant"), task.request.delivery_info.get("priority")))

    task_prerun.connect(on_prerun, weak=False)
    try:
        with compat.worker():
            result = compat_retry_queue.celery_task.apply_async(
                args=[1], headers={"tenant": "acme"}, priority=3
            )
            assert result.get(timeout=20) == 11
    finally:
        task_prerun.disconnect(on_prerun)
    assert len(seen) == 2 and seen[0][0] == seen[1][0] == "acme"
    assert seen[0][1] == seen[1][1]


# canvas over parked runs (issue 11 item 2) -------------------------------------------------
def test_chord_over_parked_runs_calls_its_body(make_app: Any) -> None:
    """A chord whose header runs park (durable wait) completes with the right result."""
    compat: Compat = make_app(wait_threshold=0.05)
    with compat.worker():
        # Given a chord of three runs that each park once
        result = chord([compat_park.celery_task.s(i) for i in (1, 2, 3)])(
            compat_sum.celery_task.s()
        )
        # Then the body gets every header result
        assert result.get(timeout=30) == 12


def test_chord_over_runs_retried_through_the_queue_calls_its_body(make_app: Any) -> None:
    """A chord whose header runs retry through the queue (timer service) completes."""
    compat: Compat = make_app(warm_retry_threshold=0.1)
    with compat.worker():
        result = chord([compat_retry_queue.celery_task.s(i) for i in (1, 2)])(
            compat_sum.celery_task.s()
        )
        assert result.get(timeout=30) == 23


def test_chain_and_group_over_parked_runs(make_app: Any) -> None:
    """Chains and groups over runs that park give the same results as without parking."""
    compat: Compat = make_app(wait_threshold=0.05)
    with compat.worker():
        chained = chain(compat_park.celery_task.s(1), compat_park.celery_task.s())()
        grouped = group(compat_park.celery_task.s(i) for i in (1, 2))()
        assert chained.get(timeout=30) == 4
        assert grouped.get(timeout=30) == [2, 4]


def test_chunks_and_starmap_of_a_trigger_task(make_app: Any) -> None:
    """chunks/starmap call the task inline inside one Celery task, as Celery does."""
    compat: Compat = make_app()
    with compat.worker():
        mapped = compat_orphan.celery_task.starmap([(1,), (2,)]).apply_async()
        chunked = compat_orphan.celery_task.chunks([(i,) for i in range(4)], 2).apply_async()
        assert mapped.get(timeout=20) == [2, 3]
        assert chunked.get(timeout=20) == [[1, 2], [3, 4]]


# unknown tasks and the publish watchdog (issue 11 item 3) ----------------------------------
def test_run_of_a_task_no_live_worker_serves_waits_in_pending_version(make_app: Any) -> None:
    """An old worker (without the task) refuses the run: it becomes PENDING_VERSION, and a
    worker that serves the task runs it as soon as it starts."""
    compat: Compat = make_app()
    app, spec = compat.app, compat_orphan
    # Given a worker of an older deploy that does not know the task
    del app.tasks[spec.id]
    try:
        with compat.worker():
            handle = compat_orphan.trigger(1)
            # Then the refused run waits for a worker that knows its task
            wait_for_status(handle.id, "PENDING_VERSION", timeout=15)
    finally:
        _celery.bind(compat.trigger, spec)
    # When a worker that serves the task starts
    with compat.worker():
        run = wait_for_status(handle.id, timeout=20)
    # Then the run ran there
    assert run.status is ct.RunStatus.COMPLETED and run.output == 2


def test_a_refused_run_is_offered_again_while_a_live_worker_serves_its_task(
    make_app: Any,
) -> None:
    """When a live worker serves the task, a refusal republishes the run shortly."""
    compat: Compat = make_app()
    # Given a run whose message is gone (taken and refused by an old worker)
    handle = compat_orphan.trigger(5)
    _purge(compat)
    with compat.worker():
        # When a worker that serves the task is live and the refusal is handled
        assert presence.refused(compat.trigger, handle.id, "compat-orphan") == "reoffer"
        # Then the run is published again and completes
        run = wait_for_status(handle.id, timeout=15)
    assert run.output == 6


def test_the_publish_watchdog_rearms_each_time_it_republishes(make_app: Any) -> None:
    """A QUEUED run always has something due: the watchdog re-arms after each republish."""
    compat: Compat = make_app(publish_watchdog=0.3)
    store = compat.trigger.store
    member = TimerKind.PUBLISH.member
    # Given a queued run whose message is lost twice, with only the timer service running
    handle = compat_orphan.trigger(1)
    _purge(compat)
    service = _timer_service(compat)
    try:
        for _ in range(2):
            # Then the watchdog publishes it again and is armed again
            wait_for(lambda: _queued_messages(compat) >= 1, timeout=10)
            assert store.timer_due(member(handle.id)) is not None
            _purge(compat)
    finally:
        service.stop()
    assert ct.runs.retrieve(handle.id).status is ct.RunStatus.QUEUED


def _timer_service(compat: Compat) -> Any:
    service = TimerService(compat.trigger)
    service.start()
    return service


def _purge(compat: Compat) -> None:
    with compat.app.connection_for_write() as conn:
        compat.app.amqp.queues[compat.queue](conn.default_channel).purge()


def _queued_messages(compat: Compat) -> int:
    with compat.app.connection_for_write() as conn:
        queue = compat.app.amqp.queues[compat.queue](conn.default_channel)
        _, count, _ = queue.queue_declare()
        return int(count)


@pytest.fixture(autouse=True)
def _reset_counters() -> None:
    STARTED.clear()
    CALLS.clear()
