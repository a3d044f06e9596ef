"""Durable duration waits: the 5-second threshold, parking, hooks, units, idempotency keys.

Waits above ``wait_threshold`` park the run (WAITING, no worker held) until the timer service
wakes it; shorter ones sleep in the worker (SEMANTICS §7.1, §7.4, D-10, D-15).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import celery_trigger as ct

from .conftest import Engine, wait_for, wait_for_status

# also run with the broker on another Redis database and on RabbitMQ (tests/brokers.py)
pytestmark = pytest.mark.brokers

FAST = {"max_attempts": 2, "min_timeout_in_ms": 50, "max_timeout_in_ms": 50, "randomize": False}
COUNTS: Counter[str] = Counter()
WAITS: list[tuple[str, dict[str, Any]]] = []


def _on_wait(payload: Any, ctx: ct.Context, wait: dict[str, Any]) -> None:
    WAITS.append((f"wait:{ctx.attempt.number}", dict(wait)))


def _on_resume(payload: Any, ctx: ct.Context, wait: dict[str, Any]) -> None:
    WAITS.append((f"resume:{ctx.attempt.number}", dict(wait)))


@ct.task(id="dw-sleeper", on_wait=_on_wait, on_resume=_on_resume)
def dw_sleeper(payload: dict, ctx: ct.Context) -> dict:
    COUNTS["sleeper"] += 1
    start = time.monotonic()
    ct.wait.for_(seconds=payload["seconds"])
    return {"slept": time.monotonic() - start, "attempt": ctx.attempt.number}


@ct.task(id="dw-quick")
def dw_quick(payload: Any) -> str:
    return "quick"


def test_short_wait_sleeps_in_the_worker_and_keeps_its_slot(engine: Engine) -> None:
    """WAIT-1, TASK-24 (second half), QUEUE-6, D-10: a 3 s wait with the default 5 s threshold
    sleeps in-process: the run stays EXECUTING, no waitpoint, no on_wait/on_resume, and the
    worker slot stays taken."""
    COUNTS.clear()
    WAITS.clear()
    seen: set[str] = set()
    with engine.worker(concurrency=1):
        # Given a run sleeping 3 s on a one-slot worker
        handle = dw_sleeper.trigger({"seconds": 3})
        wait_for_status(handle.id, "EXECUTING")
        # When another run is triggered during the sleep
        other = dw_quick.trigger(None)

        def sleeper_done() -> bool:
            seen.add(ct.runs.retrieve(handle.id).status.value)
            return ct.runs.retrieve(handle.id).is_completed

        wait_for(sleeper_done, timeout=15)
        quick = wait_for_status(other.id)
    # Then the sleeper never parked, and the other run started only once it finished
    run = ct.runs.retrieve(handle.id)
    assert run.status == ct.RunStatus.COMPLETED and run.output["slept"] >= 3.0
    assert seen <= {"EXECUTING", "COMPLETED"}
    assert WAITS == [] and COUNTS["sleeper"] == 1
    assert engine.store.journal(handle.id) == []
    assert quick.started_at >= run.finished_at


def test_long_wait_parks_and_calls_on_wait_and_on_resume_once(make_engine) -> None:  # type: ignore[no-untyped-def]
    """WAIT-2 (scaled: threshold 0.5 s, wait 1.5 s), TASK-24, D-17: the run is WAITING with a
    resume timer at the target time, on_wait({type: duration, date}) then on_resume fire once
    each, and it resumes in the same attempt."""
    engine = make_engine(wait_threshold=0.5)
    COUNTS.clear()
    WAITS.clear()
    with engine.worker(concurrency=1):
        # Given a run that waits 1.5 s
        handle = dw_sleeper.trigger({"seconds": 1.5})
        # When it parks
        started = wait_for_status(handle.id, "WAITING").started_at.timestamp() * 1000
        due = engine.store.timer_due(f"resume|{handle.id}")
        # Then its wake-up is registered ≈ 1.5 s after it started and it resumes after that
        assert due is not None and 1490 <= due - started <= 2500
        run = wait_for_status(handle.id, timeout=20)
    assert run.status == ct.RunStatus.COMPLETED and run.output["attempt"] == 1
    assert run.attempt_count == 1 and run.finished_at.timestamp() * 1000 >= due
    assert run.duration_ms < 1000  # the usage clock stops while parked
    assert [kind for kind, _ in WAITS] == ["wait:1", "resume:1"]
    assert WAITS[0][1]["type"] == "duration" and WAITS[1][1]["type"] == "duration"
    assert abs(WAITS[0][1]["date"].timestamp() * 1000 - due) < 2
    assert COUNTS["sleeper"] == 2


INIT_COUNTS: Counter[str] = Counter()


def _init(payload: Any) -> dict[str, int]:
    INIT_COUNTS["init"] += 1
    return {"db": 1}


def _on_start(payload: Any) -> None:
    INIT_COUNTS["on_start"] += 1


def _on_start_attempt(payload: Any) -> None:
    INIT_COUNTS["on_start_attempt"] += 1


@ct.task(id="dw-hooked", init=_init, on_start=_on_start, on_start_attempt=_on_start_attempt)
def dw_hooked(payload: Any, ctx: ct.Context) -> int:
    INIT_COUNTS["run"] += 1
    ct.wait.for_(seconds=0.8)
    return ctx.attempt.number


def test_resume_does_not_run_init_or_start_hooks_again(make_engine) -> None:  # type: ignore[no-untyped-def]
    """TASK-21, D-17: after resuming from a wait, init, on_start and on_start_attempt do not
    run again (the run function does: replay)."""
    engine = make_engine(wait_threshold=0.5)
    INIT_COUNTS.clear()
    with engine.worker(concurrency=1):
        # Given a task with init and start hooks that parks once
        handle = dw_hooked.trigger(None)
        wait_for_status(handle.id, "WAITING")
        # When it resumes and completes
        run = wait_for_status(handle.id, timeout=20)
    # Then each hook ran once, in attempt 1
    assert run.status == ct.RunStatus.COMPLETED and run.output == 1
    assert INIT_COUNTS == Counter(init=1, on_start=1, on_start_attempt=1, run=2)


@ct.task(id="dw-units")
def dw_units(payload: dict) -> str:
    ct.wait.for_(**payload)
    return "woke"


def test_seconds_key_wins_over_other_units(make_engine) -> None:  # type: ignore[no-untyped-def]
    """WAIT-3 (scaled): for_(minutes=1, seconds=1) waits 1 s: the first unit of seconds →
    years given is the one honoured."""
    engine = make_engine(wait_threshold=0.5)
    with engine.worker(concurrency=1):
        # Given a wait with both minutes and seconds
        before = time.time() * 1000
        handle = dw_units.trigger({"minutes": 1, "seconds": 1})
        wait_for_status(handle.id, "WAITING")
        # Then the resume is ≈ 1 s away, not 60 s, and the run completes
        due = engine.store.timer_due(f"resume|{handle.id}")
        assert due is not None and due - before < 5000
        assert wait_for_status(handle.id, timeout=15).output == "woke"


@pytest.mark.parametrize(("unit", "days"), [("months", 30), ("years", 365)])
def test_months_and_years_target_thirty_and_365_days(engine: Engine, unit: str, days: int) -> None:
    """WAIT-4: {months: 1} targets now + 30 days, {years: 1} now + 365 days."""
    with engine.worker(concurrency=1):
        # Given a run waiting one month (or year)
        before = time.time() * 1000
        handle = dw_units.trigger({unit: 1})
        wait_for_status(handle.id, "WAITING")
        after = time.time() * 1000
        # Then its resume timer is that far away
        due = engine.store.timer_due(f"resume|{handle.id}")
        assert due is not None
        assert before + days * 86_400_000 <= due <= after + days * 86_400_000
        # And cancelling it removes the wake-up
        ct.runs.cancel(handle.id)
        assert wait_for_status(handle.id).status == ct.RunStatus.CANCELED
    assert engine.store.timer_due(f"resume|{handle.id}") is None


@ct.task(id="dw-until")
def dw_until(payload: None) -> dict:
    past = datetime.now(timezone.utc) - timedelta(minutes=5)
    start = time.monotonic()
    ct.wait.until(past)
    out: dict[str, Any] = {"returned_in": time.monotonic() - start}
    try:
        ct.wait.until(past, throw_if_in_the_past=True)
    except ValueError as exc:
        out["error"] = str(exc)
    try:
        ct.wait.until(datetime.now())  # naive: rejected
    except ValueError as exc:
        out["naive"] = str(exc)
    return out


def test_until_a_past_date_returns_or_raises_when_asked(engine: Engine) -> None:
    """WAIT-5: wait.until(past) returns at once; with throw_if_in_the_past it raises
    ValueError("Date is in the past"). Naive datetimes are rejected."""
    with engine.worker(concurrency=1):
        # When a run waits until a past date
        run = wait_for_status(dw_until.trigger(None).id)
    # Then it returned at once, then raised when asked to
    assert run.status == ct.RunStatus.COMPLETED, run.error
    assert run.output["returned_in"] < 0.5
    assert run.output["error"] == "Date is in the past"
    assert "timezone-aware" in run.output["naive"]


@ct.task(id="dw-keyed")
def dw_keyed(payload: dict) -> str:
    ct.wait.for_(seconds=payload["seconds"], idempotency_key=payload["key"])
    return "woke"


def test_runs_sharing_a_wait_key_resume_at_the_first_target(make_engine) -> None:  # type: ignore[no-untyped-def]
    """WAIT-6 (scaled), D-15: a second run using the same wait idempotency key resumes at the
    first run's target time; once that time passed, a third run does not wait at all."""
    engine = make_engine(wait_threshold=0.5)
    with engine.worker(concurrency=2):
        # Given a first run waiting 2 s with key "k"
        first = dw_keyed.trigger({"seconds": 2, "key": "shared-k"})
        wait_for_status(first.id, "WAITING")
        first_due = engine.store.timer_due(f"resume|{first.id}")
        # When a second run waits 2 s with the same key a little later
        second = dw_keyed.trigger({"seconds": 2, "key": "shared-k"})
        wait_for_status(second.id, "WAITING")
        # Then it is due at exactly the first run's target time
        assert engine.store.timer_due(f"resume|{second.id}") == first_due
        assert wait_for_status(first.id, timeout=15).output == "woke"
        assert wait_for_status(second.id, timeout=15).output == "woke"
        # And a third run with the key after that time continues at once
        third = dw_keyed.trigger({"seconds": 30, "key": "shared-k"})
        run = wait_for_status(third.id, timeout=10)
    assert run.output == "woke"
    assert len(engine.store.journal(third.id)) == 1  # passed wait still recorded


STEPS: Counter[str] = Counter()


@ct.task(id="dw-retry-wait", retry=FAST, on_wait=_on_wait, on_resume=_on_resume)
def dw_retry_wait(payload: None, ctx: ct.Context) -> dict:
    STEPS[f"run:{ctx.attempt.number}"] += 1
    start = time.monotonic()
    ct.wait.for_(seconds=1, idempotency_key=f"w-{ctx.run.id}")
    keyed_wait = time.monotonic() - start
    if ctx.attempt.number == 1:
        raise RuntimeError("fail after the wait")
    value = ct.steps.run("after", lambda: STEPS.update(["step"]) or STEPS["step"])
    ct.wait.for_(seconds=0.8)
    return {"keyed_wait": keyed_wait, "value": value, "attempt": ctx.attempt.number}


def test_retried_run_does_not_wait_again_on_a_passed_keyed_wait(make_engine) -> None:  # type: ignore[no-untyped-def]
    """WAIT-7 (raw key: ``idempotency_keys`` is not available yet), D-15: the next attempt
    passes the keyed wait at once, and later durable operations still replay correctly."""
    engine = make_engine(wait_threshold=0.5)
    STEPS.clear()
    WAITS.clear()
    with engine.worker(concurrency=1):
        # Given a run whose attempt 1 fails after a keyed 1 s wait
        handle = dw_retry_wait.trigger(None)
        # When attempt 2 reaches the same keyed wait, then a step and another wait
        run = wait_for_status(handle.id, timeout=30)
    # Then attempt 2 did not wait again; its step ran once across its own resume
    assert run.status == ct.RunStatus.COMPLETED, run.error
    assert run.output["attempt"] == 2 and run.output["keyed_wait"] < 0.5
    assert run.output["value"] == 1 and STEPS["step"] == 1
    assert STEPS == Counter({"run:1": 2, "run:2": 2, "step": 1})
    assert [kind for kind, _ in WAITS] == ["wait:1", "resume:1", "wait:2", "resume:2"]


def test_parked_runs_leave_the_worker_free(engine: Engine) -> None:
    """QUEUE-5/QUEUE-6 in spirit, D-10 (issue "Done when"): six runs parked in
    wait.for_(seconds=30) on a worker with concurrency 2 leave it free to run other work."""
    with engine.worker(concurrency=2):
        # Given six runs parked in a 30 s wait on a two-slot worker
        sleepers = [dw_sleeper.trigger({"seconds": 30}) for _ in range(6)]
        for handle in sleepers:
            wait_for_status(handle.id, "WAITING")
        # When other work arrives
        started = time.monotonic()
        quick = wait_for_status(dw_quick.trigger(None).id, timeout=5)
        # Then it runs at once
        assert quick.output == "quick" and time.monotonic() - started < 5
        for handle in sleepers:
            ct.runs.cancel(handle.id)
        assert all(wait_for_status(h.id).status == ct.RunStatus.CANCELED for h in sleepers)
