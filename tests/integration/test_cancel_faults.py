"""Cancel under races and while executing (issue 12, items 3 and 4; SEMANTICS §6 CONC-1, the
cancel checks of §2): the cancel write knows the status it cancelled from, frees a slot only
for a run that held one, and an executing attempt stops within about a second, runs
``on_cancel`` once and gives its slot back."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import celery_trigger as ct
from celery_trigger._engine import concurrency, control
from celery_trigger._engine.clock import now_ms
from celery_trigger._engine.engine import current
from celery_trigger._engine.slots import hint

from .conftest import wait_for, wait_for_status

RACES = 1000


def test_cancel_racing_claims_never_frees_a_held_slot(engine: Any) -> None:
    # Given a queue with a limit of 1 and runs nobody consumes
    queue = ct.queue(name=f"race-{engine.prefix}", concurrency_limit=1)

    @ct.task(id=f"race-{engine.prefix}", queue=queue)
    def race(payload: Any) -> None:
        return None

    eng = current()
    concurrency.define_queue(eng, queue.name, 1)
    scope = hint(eng, race.id)
    violations = leaks = claimed = 0
    for _ in range(RACES):
        run_id = race.trigger({}).id
        barrier = threading.Barrier(2)
        claims: list[Any] = []

        def claim(
            run_id: str = run_id, barrier: threading.Barrier = barrier, out: list[Any] = claims
        ) -> None:
            barrier.wait()
            token = uuid.uuid4().hex
            out.append(
                eng.store.claim_attempt(run_id, token, now_ms(), 30000, "new", (), scope=scope)
            )

        def cancel(run_id: str = run_id, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            control.cancel_one(eng, run_id)

        # When a delivery's claim and a cancel race
        threads = [threading.Thread(target=claim), threading.Thread(target=cancel)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        running, _ = eng.store.queue_usage(queue.name, now_ms())
        taken = claims[0].action == "ok"
        claimed += taken
        # Then a claimed attempt still holds its slot (nothing else could be admitted) ...
        if running != (1 if taken else 0):
            violations += 1
        # ... and once the attempt releases (as the Slots participant does), none is held
        if taken:
            concurrency.release(eng, claims[0].record)
        if eng.store.queue_usage(queue.name, now_ms())[0] != 0:
            leaks += 1
    assert (violations, leaks) == (0, 0), f"{claimed} claims won the race"


def test_executing_run_stops_within_a_second_of_cancel_and_runs_on_cancel_once(
    make_engine: Any,
) -> None:
    # Given a long attempt in a queue with a limit of 1 (default 30 s lease)
    env = make_engine(lease_seconds=30.0)
    queue = ct.queue(name=f"slow-{env.prefix}", concurrency_limit=1)
    cancelled: list[tuple[Any, str]] = []
    started = threading.Event()

    @ct.task(
        id=f"slow-{env.prefix}",
        queue=queue,
        on_cancel=lambda payload, ctx: cancelled.append((payload, ctx.run.id)),
    )
    def slow(payload: Any) -> str:
        started.set()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(0.01)
        return "finished"

    quick = ct.task(id=f"quick-{env.prefix}", queue=queue, run=lambda p: p)
    with env.worker(concurrency=2):
        handle = slow.trigger({"k": 1})
        wait_for(started.is_set, timeout=15)
        # When it is cancelled
        t0 = time.monotonic()
        ct.runs.cancel(handle.id)
        # Then the attempt stops and on_cancel runs within about a second, once
        wait_for(lambda: cancelled, timeout=5)
        assert time.monotonic() - t0 < 1.5
        assert cancelled == [({"k": 1}, handle.id)]
        # ... and its slot is free: the next run of the queue runs
        nxt = quick.trigger(7)
        assert wait_for_status(nxt.id, ct.RunStatus.COMPLETED).output == 7
        assert len(cancelled) == 1
