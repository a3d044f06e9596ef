"""Concurrency slots across a run's life: parks, resumes, retries, cancels, TTL expiry,
and machine-preset routing (SEMANTICS §6.2, DESIGN §6).

Every test ends with no slot held and nobody left in line (``assert_no_slots``).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker

import celery_trigger as ct
from tests.helpers import redis_client

from .conftest import Engine, wait_for, wait_for_status

_lock = threading.Lock()
MARKS: list[tuple[str, float]] = []
GATE = threading.Event()
LIMIT1 = ct.queue(name="tql-limit-1", concurrency_limit=1)


def mark(name: str) -> None:
    with _lock:
        MARKS.append((name, time.monotonic()))


def when(name: str) -> float:
    with _lock:
        return next(t for n, t in MARKS if n == name)


def assert_no_slots(engine: Engine) -> None:
    """No slot held, nobody ready or waiting in any sub-queue."""
    client, k = redis_client(engine.store), engine.store.keys
    assert client.zcard(k.slots()) == 0
    assert client.hlen(k.slots_count()) == 0
    assert client.zcard(k.slots_ready()) == 0
    assert list(client.scan_iter(f"{engine.prefix}:q:*:waiting")) == []


@pytest.fixture(autouse=True)
def _fresh() -> None:
    MARKS.clear()
    GATE.clear()


@ct.task(id="tql-block", queue=LIMIT1)
def tql_block(payload: dict[str, Any]) -> None:
    mark(f"{payload['name']}-start")
    GATE.wait(20)
    mark(f"{payload['name']}-end")


@ct.task(id="tql-quick", queue=LIMIT1)
def tql_quick(payload: dict[str, Any]) -> str:
    mark(f"{payload['name']}-start")
    return str(payload["name"])


@ct.task(id="tql-parker", queue=LIMIT1)
def tql_parker(payload: dict[str, Any], ctx: ct.Context) -> str:
    ct.wait.for_(seconds=payload["wait"])
    mark(f"{payload['name']}-resumed")
    return "done"


@ct.task(
    id="tql-flaky",
    queue=LIMIT1,
    retry={
        "max_attempts": 2,
        "min_timeout_in_ms": 2000,
        "max_timeout_in_ms": 2000,
        "randomize": False,
    },
)
def tql_flaky(payload: dict[str, Any], ctx: ct.Context) -> int:
    mark(f"flaky-{ctx.attempt.number}-start")
    time.sleep(0.05)
    mark(f"flaky-{ctx.attempt.number}-end")
    if ctx.attempt.number == 1:
        raise RuntimeError("first attempt fails")
    return ctx.attempt.number


def test_parked_run_releases_its_slot_and_resumes_before_later_runs(make_engine: Any) -> None:
    """QUEUE-5/6 (slot side), QUEUE-7: a parked run holds no slot (another run of its limit-1
    queue executes while it is WAITING); when its wait ends while the queue is busy it waits
    for a slot, and gets it before a run triggered after it was first queued."""
    engine = make_engine(wait_threshold=0.2)
    with engine.worker(concurrency=4):
        # Given a run parked in a 1 s wait on a limit-1 queue
        parker = tql_parker.trigger({"name": "P", "wait": 1.0})
        wait_for_status(parker.id, "WAITING")
        # When another run takes the free slot, and a third is queued behind it
        blocker = tql_block.trigger({"name": "X"})
        wait_for_status(blocker.id, "EXECUTING")
        later = tql_quick.trigger({"name": "C"})
        assert ct.runs.retrieve(parker.id).status == ct.RunStatus.WAITING
        # Then once the wait is over the parked run is back in line, ahead of C
        wait_for(lambda: ct.queues.retrieve("tql-limit-1").queued == 2, timeout=10)
        GATE.set()
        for handle in (parker, blocker, later):
            assert wait_for_status(handle.id).status == ct.RunStatus.COMPLETED
    assert when("X-end") < when("P-resumed") < when("C-start")
    assert ct.runs.retrieve(parker.id).attempt_count == 1
    assert_no_slots(engine)


def test_short_in_process_wait_keeps_the_slot(engine: Engine) -> None:
    """QUEUE-6, D-10: a run sleeping 0.5 s in wait.for_ (under the 5 s threshold) keeps its
    slot: the next run of its limit-1 queue starts only after it finished."""
    with engine.worker(concurrency=4):
        # Given a run in a short in-process wait, and another run of the same queue
        sleeper = tql_parker.trigger({"name": "S", "wait": 0.5})
        wait_for_status(sleeper.id, "EXECUTING")
        other = tql_quick.trigger({"name": "Q"})
        # When both finish
        for handle in (sleeper, other):
            assert wait_for_status(handle.id).status == ct.RunStatus.COMPLETED
    # Then the other started after the sleeper resumed
    assert when("S-resumed") <= when("Q-start")
    assert_no_slots(engine)


def test_long_retry_delay_releases_the_slot(make_engine: Any) -> None:
    """§6.2, DESIGN §6: a retry that waits in the queue (delay above the warm-retry
    threshold) gives its slot back; another run executes meanwhile; the retry runs after."""
    engine = make_engine(warm_retry_threshold=0.1)
    with engine.worker(concurrency=4):
        # Given a run whose first attempt fails with a 2 s retry delay (room for a loaded box)
        flaky = tql_flaky.trigger({})
        wait_for(
            lambda: (
                ct.runs.retrieve(flaky.id).attempt_count == 1
                and ct.runs.retrieve(flaky.id).status == ct.RunStatus.QUEUED
            )
        )
        # When another run of its limit-1 queue is triggered during the delay
        other = tql_quick.trigger({"name": "Q"})
        # Then it runs in the freed slot, before the second attempt
        assert wait_for_status(other.id).status == ct.RunStatus.COMPLETED
        run = wait_for_status(flaky.id)
    assert run.status == ct.RunStatus.COMPLETED and run.output == 2
    assert when("flaky-1-end") < when("Q-start") < when("flaky-2-start")
    assert_no_slots(engine)


def test_cancelled_and_expired_runs_leave_the_line(engine: Engine) -> None:
    """§6.2: a run waiting for a slot can be cancelled or reach its TTL (EXPIRED, never
    rejected otherwise); either way it leaves the line and never runs."""
    with engine.worker(concurrency=4):
        # Given a busy limit-1 queue with two runs waiting, one with a 1 s TTL
        blocker = tql_block.trigger({"name": "X"})
        wait_for_status(blocker.id, "EXECUTING")
        cancelled = tql_quick.trigger({"name": "cancelled"})
        expiring = tql_quick.trigger({"name": "expiring"}, ttl=1)
        wait_for(lambda: ct.queues.retrieve("tql-limit-1").queued == 2)
        # When one is cancelled and the other's TTL passes
        ct.runs.cancel(cancelled.id)
        assert wait_for_status(expiring.id).status == ct.RunStatus.EXPIRED
        # Then the line is empty, and neither runs once the slot frees
        assert ct.queues.retrieve("tql-limit-1").queued == 0
        last = tql_quick.trigger({"name": "last"})
        GATE.set()
        assert wait_for_status(last.id).status == ct.RunStatus.COMPLETED
    assert ct.runs.retrieve(cancelled.id).status == ct.RunStatus.CANCELED
    assert [n for n, _ in MARKS if n.endswith("-start")] == ["X-start", "last-start"]
    assert_no_slots(engine)


@ct.task(id="tql-big", machine="large-1x")
def tql_big(payload: Any, ctx: ct.Context) -> dict[str, Any]:
    return {"machine": ctx.machine.name, "cpu": ctx.machine.cpu}


@ct.task(id="tql-small")
def tql_small(payload: Any) -> str:
    return "small"


def test_machine_preset_runs_go_to_their_celery_queue(make_engine: Any) -> None:
    """Issue §5, DESIGN §6: with ``trigger_machine_queues`` a worker started for one preset
    only receives that preset's runs."""
    big_queue = f"big-{uuid.uuid4().hex[:8]}"
    engine = make_engine(machine_queues={"large-1x": big_queue})
    try:
        # Given a worker consuming only the large-1x Celery queue
        with start_worker(
            engine.app,
            pool="threads",
            concurrency=2,
            perform_ping_check=False,
            queues=[big_queue],
            loglevel="WARNING",
        ):
            # When a large-1x run and a default-machine run are triggered
            big = tql_big.trigger(None)
            small = tql_small.trigger(None)
            run = wait_for_status(big.id)
            # Then the large run ran there with its preset, the other waits for its worker
            assert run.output == {"machine": "large-1x", "cpu": 4}
            assert ct.runs.retrieve(small.id).status == ct.RunStatus.QUEUED
        assert redis_client(engine.store).llen(engine.queue) == 1
    finally:
        redis_client(engine.store).delete(big_queue)
