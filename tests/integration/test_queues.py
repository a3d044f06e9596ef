"""Queues and concurrency limits with a real worker (SEMANTICS §6, DESIGN §6).

Each run records when its body started and ended (``SPANS``), so "at most N at a time" is
measured from what actually executed, not from statuses sampled by the test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

import pytest

import celery_trigger as ct

from .conftest import Engine, wait_for, wait_for_status

# also run with the broker on another Redis database and on RabbitMQ (tests/brokers.py)
pytestmark = pytest.mark.brokers

_lock = threading.Lock()
#: group -> [(start, end, run id, key)] of every run body that finished
SPANS: dict[str, list[tuple[float, float, str, str]]] = {}
GATE = threading.Event()


def _work(payload: dict[str, Any], ctx: ct.Context) -> dict[str, Any]:
    started = time.monotonic()
    if payload.get("gate"):
        GATE.wait(20)
    time.sleep(payload.get("s", 0.0))
    with _lock:
        SPANS.setdefault(payload["group"], []).append(
            (started, time.monotonic(), ctx.run.id, payload.get("key", ""))
        )
    return {"queue": ctx.queue.name}


def max_overlap(spans: Iterable[tuple[float, float, str, str]]) -> int:
    """The most spans open at one instant (an end at t closes before a start at t)."""
    rows = list(spans)
    events = sorted([(s, 1) for s, _, _, _ in rows] + [(e, -1) for _, e, _, _ in rows])
    current = peak = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def spans(group: str) -> list[tuple[float, float, str, str]]:
    with _lock:
        return sorted(SPANS.get(group, []))


@pytest.fixture(autouse=True)
def _fresh() -> None:
    SPANS.clear()
    GATE.clear()


LIMIT1 = ct.queue(name="tq-limit-1", concurrency_limit=1)
SHARED = ct.queue(name="tq-shared", concurrency_limit=1)
KEYED = ct.queue(name="tq-keyed", concurrency_limit=2)


@ct.task(id="tq-one", queue=LIMIT1)
def tq_one(payload: dict[str, Any], ctx: ct.Context) -> dict[str, Any]:
    return _work(payload, ctx)


@ct.task(id="tq-shared-a", queue=SHARED)
def tq_shared_a(payload: dict[str, Any], ctx: ct.Context) -> dict[str, Any]:
    return _work(payload, ctx)


@ct.task(id="tq-shared-b", queue=SHARED)
def tq_shared_b(payload: dict[str, Any], ctx: ct.Context) -> dict[str, Any]:
    return _work(payload, ctx)


@ct.task(id="tq-keyed", queue=KEYED)
def tq_keyed(payload: dict[str, Any], ctx: ct.Context) -> dict[str, Any]:
    return _work(payload, ctx)


@ct.task(id="tq-free")
def tq_free(payload: dict[str, Any], ctx: ct.Context) -> dict[str, Any]:
    return _work(payload, ctx)


@ct.task(id="tq-own-limit", queue={"concurrency_limit": 1})
def tq_own_limit(payload: dict[str, Any], ctx: ct.Context) -> dict[str, Any]:
    return _work(payload, ctx)


def test_limit_one_runs_one_at_a_time_in_trigger_order(engine: Engine) -> None:
    """QUEUE-1: with concurrency_limit 1 and 3 runs triggered together, at most one executes
    at any instant and they start in trigger order (on a worker with 4 free threads)."""
    with engine.worker(concurrency=4):
        # Given three runs triggered together into a limit-1 queue
        handles = [tq_one.trigger({"group": "q1", "s": 0.15}) for _ in range(3)]
        # When they all finish
        runs = [wait_for_status(h.id) for h in handles]
    # Then they never overlapped and started in trigger order
    assert [r.status for r in runs] == [ct.RunStatus.COMPLETED] * 3
    assert max_overlap(spans("q1")) == 1
    assert [s[2] for s in spans("q1")] == [h.id for h in handles]
    assert ct.queues.retrieve("tq-limit-1").running == 0


def test_each_concurrency_key_gets_its_own_limit(engine: Engine) -> None:
    """QUEUE-2: limit 2 with keys a,a,a,b,b,b: at most 2 "a" and 2 "b" runs at once, and up to
    4 in total (the worker has 6 threads)."""
    with engine.worker(concurrency=6):
        # Given six keyed runs triggered together
        handles = [
            tq_keyed.trigger({"group": "q2", "key": k, "s": 0.3}, concurrency_key=k)
            for k in "aaabbb"
        ]
        # When they finish
        for h in handles:
            assert wait_for_status(h.id).status == ct.RunStatus.COMPLETED
    # Then each key stayed within 2 and both keys ran side by side
    done = spans("q2")
    assert max_overlap(s for s in done if s[3] == "a") == 2
    assert max_overlap(s for s in done if s[3] == "b") == 2
    assert max_overlap(done) == 4


def test_two_tasks_sharing_a_limit_one_queue_never_overlap(engine: Engine) -> None:
    """QUEUE-3: two tasks on one queue({name: "shared", concurrency_limit: 1})."""
    with engine.worker(concurrency=4):
        # Given runs of both tasks triggered together
        handles = [
            task.trigger({"group": "q3", "s": 0.1})
            for task in (tq_shared_a, tq_shared_b, tq_shared_a, tq_shared_b)
        ]
        for h in handles:
            assert wait_for_status(h.id).status == ct.RunStatus.COMPLETED
    # Then no two ever executed at once
    assert max_overlap(spans("q3")) == 1


def test_environment_limit_keeps_the_extra_run_queued(make_engine: Any) -> None:
    """QUEUE-4: with the environment limit at 2, the third run stays QUEUED (not rejected)
    until one finishes, then runs."""
    engine = make_engine(concurrency_limit=2)
    with engine.worker(concurrency=4):
        # Given two runs of an unlimited queue holding both environment slots
        busy = [tq_free.trigger({"group": "q4", "gate": True}) for _ in range(2)]
        for h in busy:
            wait_for_status(h.id, "EXECUTING")
        # When a third is triggered
        third = tq_free.trigger({"group": "q4"})
        wait_for(lambda: engine.store.queue_usage("task/tq-free", 0)[1] == 1)
        # Then it waits, queued, while both slots are busy
        assert ct.runs.retrieve(third.id).status == ct.RunStatus.QUEUED
        assert ct.queues.retrieve("task/tq-free").running == 2
        # When the busy runs finish, it runs
        GATE.set()
        assert wait_for_status(third.id).status == ct.RunStatus.COMPLETED
    assert max_overlap(spans("q4")) == 2


def test_queue_limit_above_the_environment_limit_is_clamped(make_engine: Any) -> None:
    """QUEUE-8: a queue whose limit (2) exceeds the environment limit (1) behaves as 1."""
    engine = make_engine(concurrency_limit=1)
    with engine.worker(concurrency=4):
        # Given three runs on a limit-2 queue under an environment limit of 1
        handles = [tq_keyed.trigger({"group": "q8", "s": 0.1}) for _ in range(3)]
        for h in handles:
            assert wait_for_status(h.id).status == ct.RunStatus.COMPLETED
    # Then they ran one at a time, and the queue reports the clamped limit
    assert max_overlap(spans("q8")) == 1
    assert ct.queues.retrieve("tq-keyed").concurrency_limit == 1


def test_paused_queue_starts_nothing_until_resumed(engine: Engine) -> None:
    """QUEUE-9: pause lets the executing run finish but starts no other; resume starts the
    queued runs in order."""
    with engine.worker(concurrency=4):
        # Given one run executing in a limit-1 queue and one queued behind it
        first = tq_one.trigger({"group": "q9", "gate": True})
        wait_for_status(first.id, "EXECUTING")
        second = tq_one.trigger({"group": "q9"})
        # When the queue is paused and the first run finishes
        info = ct.queues.pause("tq-limit-1")
        assert info.paused
        GATE.set()
        assert wait_for_status(first.id).status == ct.RunStatus.COMPLETED
        third = tq_one.trigger({"group": "q9"})
        wait_for(lambda: ct.queues.retrieve("tq-limit-1").queued == 2)
        # Then nothing else started
        assert ct.runs.retrieve(second.id).status == ct.RunStatus.QUEUED
        assert ct.runs.retrieve(third.id).status == ct.RunStatus.QUEUED
        # When it is resumed, both run, in order
        assert not ct.queues.resume("tq-limit-1").paused
        assert wait_for_status(third.id).status == ct.RunStatus.COMPLETED
    assert [s[2] for s in spans("q9")] == [first.id, second.id, third.id]


def test_queue_names_are_sanitised(engine: Engine) -> None:
    """QUEUE-10: "my queue!" is stored as "myqueue"."""
    with engine.worker(concurrency=2):
        # When a run is triggered into a dynamic queue named "my queue!"
        handle = tq_free.trigger(
            {"group": "q10"}, queue={"name": "my queue!", "concurrency_limit": 3}
        )
        run = wait_for_status(handle.id)
    # Then the queue is "myqueue" everywhere
    assert run.output == {"queue": "myqueue"}
    assert ct.queue(name="my queue!").name == "myqueue"
    assert ct.queues.retrieve("myqueue").concurrency_limit == 3


def test_concurrency_key_number_is_stored_as_a_string(engine: Engine) -> None:
    """TRIG-18: concurrency_key=123 is stored as "123"."""
    # When a run is triggered with a numeric concurrency key
    handle = tq_keyed.trigger({"group": "t18"}, concurrency_key=123)
    # Then the record holds the string
    assert engine.store.get_run(handle.id)["ckey"] == "123"


def test_task_level_limit_without_a_name_limits_the_task_queue(engine: Engine) -> None:
    """§6.1: ``queue={"concurrency_limit": 1}`` without a name limits the task's own queue."""
    with engine.worker(concurrency=4):
        # Given three runs of a task declared with queue={"concurrency_limit": 1}
        handles = [tq_own_limit.trigger({"group": "own", "s": 0.1}) for _ in range(3)]
        runs = [wait_for_status(h.id) for h in handles]
    # Then they ran one at a time in the task's own queue
    assert {r.status for r in runs} == {ct.RunStatus.COMPLETED}
    assert max_overlap(spans("own")) == 1
    assert runs[0].output == {"queue": "task/tq-own-limit"}
    assert ct.queues.retrieve({"type": "task", "name": "tq-own-limit"}).concurrency_limit == 1
