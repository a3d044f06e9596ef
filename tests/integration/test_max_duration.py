"""``max_duration`` against real Redis and a real worker (SEMANTICS §1.6, TASK-26, TASK-27,
TRIG-19). Task ids start with ``md-``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

import celery_trigger as ct
from celery_trigger.status import RunStatus

from .conftest import Engine, wait_for_status

_notes: dict[str, list[Any]] = {}


def note(run_id: str, item: Any) -> None:
    _notes.setdefault(run_id, []).append(item)


def notes(run_id: str) -> list[Any]:
    return list(_notes.get(run_id, []))


def busy(seconds: float) -> None:
    """Burn CPU in Python bytecode (so an asynchronous interrupt can land)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def _hook(label: str) -> Any:
    def hook(**kw: Any) -> None:
        note(kw["ctx"].run.id, label)

    return hook


@ct.task(
    id="md-busy",
    max_duration=5,
    retry={"max_attempts": 3, "min_timeout_in_ms": 50, "randomize": False},
    on_failure=_hook("on_failure"),
    on_success=_hook("on_success"),
    on_complete=_hook("on_complete"),
    cleanup=_hook("cleanup"),
    catch_error=_hook("catch_error"),
)
def busy_task(payload: Any, ctx: ct.Context) -> str:
    note(ctx.run.id, f"attempt {ctx.attempt.number}")
    busy(20)
    note(ctx.run.id, "finished busy loop")
    return "not interrupted"


@ct.task(
    id="md-retried",
    max_duration=5,
    retry={"max_attempts": 2, "min_timeout_in_ms": 50, "randomize": False},
)
def retried(payload: Any, ctx: ct.Context) -> int:
    busy(3)
    if ctx.attempt.number == 1:
        raise RuntimeError("fail after 3 s")
    return ctx.attempt.number


@ct.task(id="md-short", max_duration=1)
def short(payload: Any, ctx: ct.Context) -> int | None:
    return ctx.run.max_duration


@pytest.mark.slow
def test_busy_run_past_max_duration_times_out_without_retry_or_hooks(engine: Engine) -> None:
    """TASK-26, STATUS-2, §1.6: a run busy past max_duration 5 ends TIMED_OUT after one
    attempt with MAX_DURATION_EXCEEDED; no retry, no catch_error/on_failure/on_success/
    on_complete/cleanup."""
    # Given a worker and a 3-attempt task that computes for 20 s with max_duration 5
    with engine.worker():
        # When it runs
        handle = busy_task.trigger({})
        run = wait_for_status(handle.id, timeout=12)
    # Then it was stopped about 5 s in and nothing else ran
    assert run.status is RunStatus.TIMED_OUT and run.attempt_count == 1
    assert run.error is not None and run.error.name == "MAX_DURATION_EXCEEDED"
    assert run.started_at is not None and run.finished_at is not None
    assert 5.0 <= (run.finished_at - run.started_at).total_seconds() <= 6.5
    assert notes(handle.id) == ["attempt 1"]


@pytest.mark.slow
def test_each_attempt_gets_a_fresh_max_duration_budget(engine: Engine) -> None:
    """§1.6: a retried attempt gets a fresh budget (two 3 s attempts under max_duration 5)."""
    # Given a task whose attempts each compute 3 s, the first then failing
    with engine.worker():
        # When it runs
        handle = retried.trigger({})
        run = wait_for_status(handle.id, timeout=15)
    # Then 6 s of compute in total did not time it out
    assert run.status is RunStatus.COMPLETED and run.output == 2
    assert run.duration_ms >= 6000


def test_task_max_duration_below_five_seconds_is_applied_as_five(engine: Engine) -> None:
    """TASK-27, §1.6: a task's max_duration 1 is stored and applied as 5 (ctx.run.max_duration
    shows the effective value)."""
    # Given a task declared with max_duration 1
    with engine.worker():
        # When it runs
        handle = short.trigger({})
        run = wait_for_status(handle.id, "COMPLETED")
    # Then the stored and the visible value are 5
    assert run.output == 5 and run.max_duration == 5


def test_trigger_max_duration_below_five_seconds_is_applied_as_five(engine: Engine) -> None:
    """TRIG-19, §1.6: trigger option max_duration 2 is applied as 5 (and beats the task's)."""
    # Given a worker
    with engine.worker():
        # When the task is triggered with max_duration 2 and with 30
        clamped = short.trigger({}, max_duration=2)
        larger = short.trigger({}, max_duration=30)
        runs = [wait_for_status(h.id, "COMPLETED") for h in (clamped, larger)]
    # Then the trigger value was used, clamped to 5
    assert [r.output for r in runs] == [5, 30]
    assert [r.max_duration for r in runs] == [5, 30]
