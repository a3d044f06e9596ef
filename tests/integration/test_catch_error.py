"""``catch_error`` and ``AbortTaskRunError`` against real Redis and a real worker (SEMANTICS
§1.3, §1.4, TASK-6..TASK-13). Task ids start with ``ce-``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import celery_trigger as ct
from celery_trigger.status import RunStatus

from .conftest import Engine, wait_for_status

_notes: dict[str, list[Any]] = {}


def note(run_id: str, *item: Any) -> None:
    _notes.setdefault(run_id, []).append(item)


def notes(run_id: str, kind: str) -> list[tuple[Any, ...]]:
    return [n[1:] for n in _notes.get(run_id, []) if n[0] == kind]


def _fails(payload: Any, ctx: ct.Context) -> None:
    note(ctx.run.id, "start", ctx.attempt.number, time.time())
    note(ctx.run.id, "fail", ctx.attempt.number, time.time())
    if payload and payload.get("abort"):
        raise ct.AbortTaskRunError(payload["abort"])
    raise RuntimeError(f"attempt {ctx.attempt.number} failed")


def _on_failure(*, ctx: ct.Context, error: BaseException) -> None:
    note(ctx.run.id, "on_failure", error)


def _on_complete(*, ctx: ct.Context, result: dict[str, Any]) -> None:
    note(ctx.run.id, "on_complete", result)


def _catch(answer: Callable[[ct.Context, Any], Any]) -> Callable[..., Any]:
    def catch_error(
        payload: Any,
        *,
        ctx: ct.Context,
        error: BaseException,
        retry_delay_in_ms: Any,
        retry_at: Any,
    ) -> Any:
        note(ctx.run.id, "catch", ctx.attempt.number, error, retry_delay_in_ms, retry_at)
        return answer(ctx, payload)

    return catch_error


def _task(
    task_id: str, answer: Callable[[ct.Context, Any], Any] | None, max_attempts: int = 5
) -> Any:
    return ct.task(
        id=task_id,
        run=_fails,
        retry={"max_attempts": max_attempts, "min_timeout_in_ms": 50, "randomize": False},
        catch_error=_catch(answer) if answer is not None else None,
        on_failure=_on_failure,
        on_complete=_on_complete,
    )


aborting = _task("ce-abort", lambda ctx, payload: None, max_attempts=10)
skipping = _task("ce-skip", lambda ctx, payload: {"skip_retrying": True})
delaying = _task(
    "ce-delay",
    lambda ctx, payload: (
        {"retry_delay_in_ms": 1500} if ctx.attempt.number == 1 else {"skip_retrying": True}
    ),
)
retrying_at = _task(
    "ce-retry-at",
    lambda ctx, payload: (
        {"retry_at": datetime.fromtimestamp(payload["retry_at"], tz=timezone.utc)}
        if ctx.attempt.number == 1
        else {"skip_retrying": True}
    ),
)
empty_answer = _task("ce-empty", lambda ctx, payload: {})
REPLACEMENT = ValueError("e2")
replacing = _task("ce-replace", lambda ctx, payload: {"error": REPLACEMENT})
undecided = _task("ce-undecided", lambda ctx, payload: None, max_attempts=3)
task_decides = _task("ce-task-decides", lambda ctx, payload: {"skip_retrying": True})
task_defers = _task("ce-task-defers", lambda ctx, payload: None)
greedy = _task("ce-greedy", lambda ctx, payload: {"retry_delay_in_ms": 10}, max_attempts=2)


def _raise_in_catch(ctx: ct.Context, payload: Any) -> Any:
    raise KeyError("catch_error broke")


broken_catch = _task("ce-broken", _raise_in_catch)


def test_abort_fails_at_once_and_skips_catch_error(engine: Engine) -> None:
    """TASK-6, §1.4: AbortTaskRunError("x") on attempt 1 of a 10-attempt task ends the run FAILED
    after one attempt with message "x"; on_failure and on_complete run once; catch_error not."""
    # Given a worker and a task that aborts
    with engine.worker():
        # When it runs
        handle = aborting.trigger({"abort": "x"})
        run = wait_for_status(handle.id)
    # Then it failed once, with the abort message, and only the failure hooks ran
    assert run.status is RunStatus.FAILED and run.attempt_count == 1
    assert run.error is not None and run.error.message == "x"
    assert run.error.name == "AbortTaskRunError"
    assert notes(handle.id, "catch") == []
    assert len(notes(handle.id, "on_failure")) == 1
    ((result,),) = notes(handle.id, "on_complete")
    assert result["ok"] is False and str(result["error"]) == "x"


def test_skip_retrying_ends_the_run_with_attempts_left(engine: Engine) -> None:
    """TASK-7: catch_error returning {skip_retrying: True} ends the run after this attempt."""
    # Given a 5-attempt task whose catch_error says skip_retrying
    with engine.worker():
        # When it fails
        handle = skipping.trigger({})
        run = wait_for_status(handle.id)
    # Then it is FAILED after one attempt and on_failure saw the original error
    assert run.status is RunStatus.FAILED and run.attempt_count == 1
    ((error,),) = notes(handle.id, "on_failure")
    assert str(error) == "attempt 1 failed"


def test_retry_delay_in_ms_replaces_the_policy_delay(engine: Engine) -> None:
    """TASK-8 (1500 ms instead of 5000 to stay fast): catch_error returning
    {retry_delay_in_ms: 1500} starts the next attempt ≈1.5 s later, not after the policy's 50 ms."""
    # Given a task with a 50 ms policy whose catch_error asks for 1500 ms after attempt 1
    with engine.worker():
        # When it fails twice
        handle = delaying.trigger({})
        run = wait_for_status(handle.id)
    # Then the second attempt started about 1.5 s after the first failed
    assert run.attempt_count == 2
    ((_, failed_at),) = notes(handle.id, "fail")[:1]
    started_at = notes(handle.id, "start")[1][1]
    assert 1.45 <= started_at - failed_at <= 1.5 + 1.5


def test_retry_at_schedules_the_next_attempt_at_that_instant(engine: Engine) -> None:
    """TASK-8: catch_error returning {retry_at: t} starts the next attempt at t."""
    # Given a task whose catch_error asks to retry at the instant its payload names
    at = datetime.now(timezone.utc) + timedelta(seconds=1.2)
    with engine.worker():
        # When it fails
        handle = retrying_at.trigger({"retry_at": at.timestamp()})
        run = wait_for_status(handle.id)
    # Then attempt 2 started at (not before) that instant
    assert run.attempt_count == 2
    started_at = notes(handle.id, "start")[1][1]
    assert at.timestamp() - 0.05 <= started_at <= at.timestamp() + 1.5


def test_an_empty_answer_fails_without_retrying(engine: Engine) -> None:
    """TASK-9: catch_error returning {} ends the run without retrying (the default policy is
    off), recording the original error."""
    # Given a 5-attempt task whose catch_error returns {}
    with engine.worker():
        # When it fails
        handle = empty_answer.trigger({})
        run = wait_for_status(handle.id)
    # Then one attempt ran and the run error is the thrown one
    assert run.status is RunStatus.FAILED and run.attempt_count == 1
    assert run.error is not None and run.error.message == "attempt 1 failed"


def test_a_returned_error_replaces_the_recorded_one(engine: Engine) -> None:
    """TASK-9: {error: e2} alone ends the run without retrying; the run's error and the error
    given to on_failure and on_complete are e2."""
    # Given a task whose catch_error returns only a replacement error
    with engine.worker():
        # When it fails
        handle = replacing.trigger({})
        run = wait_for_status(handle.id)
    # Then e2 is what was recorded and what the failure hooks saw
    assert run.attempt_count == 1
    assert run.error is not None and (run.error.name, run.error.message) == ("ValueError", "e2")
    assert notes(handle.id, "on_failure") == [(REPLACEMENT,)]
    assert notes(handle.id, "on_complete")[0][0]["error"] is REPLACEMENT


def test_returning_none_keeps_the_default_policy(engine: Engine) -> None:
    """TASK-10: catch_error returning None leaves the policy in force; it is offered the
    policy's delay and instant, and on the final attempt both are None."""
    # Given a 3-attempt task (50 ms, 100 ms delays) whose catch_error returns None
    with engine.worker():
        # When it always fails
        handle = undecided.trigger({})
        run = wait_for_status(handle.id)
    # Then the policy ran its three attempts and catch_error was told the planned delays
    assert run.attempt_count == 3
    seen = notes(handle.id, "catch")
    assert [(c[0], c[2]) for c in seen] == [(1, 50), (2, 100), (3, None)]
    fail_times = [f[1] for f in notes(handle.id, "fail")]
    for (_, _, delay, retry_at), failed in zip(seen[:2], fail_times[:2], strict=True):
        assert isinstance(retry_at, datetime) and retry_at.tzinfo is not None
        assert abs(retry_at.timestamp() - (failed + delay / 1000)) < 0.5
    assert seen[2][3] is None


def test_a_task_answer_hides_the_failure_from_global_catch_error(engine: Engine) -> None:
    """TASK-11: a task-level catch_error that returns a value prevents the global catch_error
    hooks from being called for that failure."""
    called: list[str] = []
    ct.tasks.catch_error(lambda **kw: called.append("global"))
    # Given a global catch_error and a task whose own catch_error answers
    with engine.worker():
        # When the task fails
        handle = task_decides.trigger({})
        wait_for_status(handle.id)
    # Then only the task's hook was asked
    assert len(notes(handle.id, "catch")) == 1
    assert called == []


def test_globals_are_asked_in_order_until_one_answers(engine: Engine) -> None:
    """§1.3 call order: the task's catch_error first; if it returns None, each global in
    registration order until one returns a value; later globals are not called."""
    called: list[str] = []

    def first(**_: Any) -> None:
        called.append("first")

    def second(**_: Any) -> dict[str, Any]:
        called.append("second")
        return {"skip_retrying": True}

    def third(**_: Any) -> None:
        called.append("third")

    for hook in (first, second, third):
        ct.tasks.catch_error(hook)
    # Given a task whose catch_error returns None and three globals
    with engine.worker():
        # When it fails
        handle = task_defers.trigger({})
        run = wait_for_status(handle.id)
    # Then the task hook, then the globals up to the one that answered, were asked
    assert len(notes(handle.id, "catch")) == 1
    assert called == ["first", "second"]
    assert run.attempt_count == 1


def test_catch_error_cannot_extend_the_attempt_budget(engine: Engine) -> None:
    """TASK-12: catch_error asking to retry on the last allowed attempt gets no extra attempt."""
    # Given a 2-attempt task whose catch_error always asks for a retry
    with engine.worker():
        # When it always fails
        handle = greedy.trigger({})
        run = wait_for_status(handle.id)
    # Then it stopped after two attempts
    assert run.status is RunStatus.FAILED and run.attempt_count == 2
    assert [c[0] for c in notes(handle.id, "catch")] == [1, 2]


def test_an_error_inside_catch_error_crashes_the_run(engine: Engine) -> None:
    """TASK-13, §1.3: an exception inside catch_error ends the run CRASHED, with no retry and
    no on_failure or on_complete call."""
    # Given a 5-attempt task whose catch_error raises
    with engine.worker():
        # When the task fails
        handle = broken_catch.trigger({})
        run = wait_for_status(handle.id)
    # Then the run crashed after one attempt and the failure hooks were skipped
    assert run.status is RunStatus.CRASHED and run.attempt_count == 1
    assert run.error is not None and run.error.name == "HANDLE_ERROR_ERROR"
    assert notes(handle.id, "on_failure") == [] and notes(handle.id, "on_complete") == []
