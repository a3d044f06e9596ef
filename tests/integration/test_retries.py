"""Retry policy of task runs against real Redis and a real worker (SEMANTICS §1.2, D-1, D-11).

Timings are measured inside the task: each attempt notes when it started and when it failed,
and a gap is "failure of attempt n" → "start of attempt n+1". Task ids start with ``rt-``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import celery_trigger as ct
from celery_trigger.status import RunStatus

from .conftest import Engine, wait_for, wait_for_status

_notes: dict[str, list[Any]] = {}


def note(run_id: str, item: Any) -> None:
    _notes.setdefault(run_id, []).append(item)


def notes(run_id: str) -> list[Any]:
    return list(_notes.get(run_id, []))


def gaps(run_id: str) -> list[float]:
    """Seconds from each attempt's failure to the next attempt's start."""
    events = [n for n in notes(run_id) if n[0] in ("start", "fail")]
    fails = [t for kind, t in events if kind == "fail"]
    starts = [t for kind, t in events if kind == "start"]
    return [start - fail for fail, start in zip(fails[: len(starts) - 1], starts[1:], strict=True)]


def _always_fails(payload: Any, ctx: ct.Context) -> None:
    note(ctx.run.id, ("start", time.time()))
    note(ctx.run.id, ("fail", time.time()))
    raise RuntimeError(f"attempt {ctx.attempt.number} failed")


def _delay_recorder(answer: Callable[[ct.Context], Any]) -> Callable[..., Any]:
    """A catch_error hook that notes what it was given and answers with ``answer(ctx)``."""

    def catch_error(*, ctx: ct.Context, retry: Any, retry_delay_in_ms: Any, retry_at: Any) -> Any:
        note(ctx.run.id, ("catch", ctx.attempt.number, retry, retry_delay_in_ms, retry_at))
        return answer(ctx)

    return catch_error


def catches(run_id: str) -> list[tuple[Any, ...]]:
    return [n for n in notes(run_id) if n[0] == "catch"]


fixed = ct.task(
    id="rt-fixed",
    run=_always_fails,
    retry={
        "max_attempts": 3,
        "factor": 2,
        "min_timeout_in_ms": 1000,
        "max_timeout_in_ms": 60000,
        "randomize": False,
    },
)
randomized = ct.task(
    id="rt-randomized",
    run=_always_fails,
    retry={
        "max_attempts": 4,
        "factor": 2,
        "min_timeout_in_ms": 200,
        "max_timeout_in_ms": 1000,
        "randomize": True,
    },
    catch_error=_delay_recorder(lambda ctx: None),
)
five_attempts = ct.task(
    id="rt-five",
    run=_always_fails,
    retry={"max_attempts": 5},
    catch_error=_delay_recorder(lambda ctx: {"skip_retrying": True}),
)
no_retry_option = ct.task(id="rt-no-retry", run=_always_fails)
builtin_default = ct.task(
    id="rt-builtin",
    run=_always_fails,
    catch_error=_delay_recorder(lambda ctx: {"retry_delay_in_ms": 20}),
)
ten_attempts = ct.task(
    id="rt-ten",
    run=_always_fails,
    retry={"max_attempts": 10, "min_timeout_in_ms": 50, "randomize": False},
)
four_attempts = ct.task(
    id="rt-four",
    run=_always_fails,
    retry={"max_attempts": 4, "min_timeout_in_ms": 50, "randomize": False},
)
dev_task = ct.task(
    id="rt-dev",
    run=_always_fails,
    retry={"max_attempts": 3, "min_timeout_in_ms": 50, "randomize": False},
    catch_error=_delay_recorder(lambda ctx: None),
)


@ct.task(
    id="rt-flaky",
    retry={"max_attempts": 3, "factor": 1, "min_timeout_in_ms": 300, "randomize": False},
)
def flaky(payload: dict[str, Any], ctx: ct.Context) -> dict[str, Any]:
    started = time.monotonic()
    time.sleep(payload.get("work_s", 0.0))
    note(ctx.run.id, ("attempt", ctx.attempt.number, ctx.run.id, time.monotonic() - started))
    if ctx.attempt.number < payload.get("succeed_on", 3):
        raise RuntimeError(f"attempt {ctx.attempt.number} failed")
    return {"attempt": ctx.attempt.number}


def _retry_once_after(delay_ms: int) -> Callable[[ct.Context], Any]:
    return lambda ctx: {"retry_delay_in_ms": delay_ms} if ctx.attempt.number == 1 else None


warm_then_done = ct.task(
    id="rt-warm",
    run=flaky.fn,
    retry={"max_attempts": 2},
    catch_error=_delay_recorder(_retry_once_after(1000)),
)
cold_then_done = ct.task(
    id="rt-cold",
    run=flaky.fn,
    retry={"max_attempts": 2},
    catch_error=_delay_recorder(_retry_once_after(1500)),
)


def status_timeline(run_id: str, timeout: float = 15.0) -> list[tuple[RunStatus, float]]:
    """Every status change of a run until it is final, with the time it was first seen."""
    timeline: list[tuple[RunStatus, float]] = []

    def observe() -> bool:
        run = ct.runs.retrieve(run_id)
        if not timeline or timeline[-1][0] is not run.status:
            timeline.append((run.status, time.monotonic()))
        return run.is_completed

    try:
        wait_for(observe, timeout=timeout, interval=0.005)
    except AssertionError:
        raise AssertionError(f"run {run_id} did not finish; statuses seen: {timeline}") from None
    return timeline


# policy and delays -------------------------------------------------------------------------


def test_fixed_backoff_makes_three_attempts_one_then_two_seconds_apart(engine: Engine) -> None:
    """TASK-1: {3 attempts, factor 2, min 1000, max 60000, randomize off} on an always-failing
    run: exactly 3 attempts, gaps ≈ 1000 ms and 2000 ms, run FAILED."""
    # Given a worker and a task that always throws
    with engine.worker():
        # When it is triggered
        handle = fixed.trigger({})
        run = wait_for_status(handle.id, timeout=20)
    # Then three attempts ran, the gaps followed the formula, and the run failed
    assert run.status is RunStatus.FAILED and run.attempt_count == 3
    assert run.error is not None and run.error.message == "attempt 3 failed"
    first, second = gaps(handle.id)
    assert 0.95 <= first <= 1.0 + 1.5
    assert 1.9 <= second <= 2.0 + 1.5


def test_randomized_backoff_stays_within_one_to_two_times_the_formula(engine: Engine) -> None:
    """TASK-2 (min 200 ms instead of 1000 to stay fast, same bounds logic): gap 1 in
    [200, 400) ms, gap 2 in [400, 800) ms; gap 3 is capped by max_timeout_in_ms (1000)."""
    # Given a worker and a randomized policy whose third delay would pass the maximum
    with engine.worker():
        # When an always-failing run is triggered
        handle = randomized.trigger({})
        run = wait_for_status(handle.id, timeout=20)
    # Then each planned delay lies in its band, and the measured gaps match the plan
    assert run.status is RunStatus.FAILED and run.attempt_count == 4
    planned = [c[3] for c in catches(handle.id)]
    assert planned[3] is None  # the last attempt has nothing left to wait for
    d1, d2, d3 = planned[:3]
    assert 200 <= d1 < 400 and 400 <= d2 < 800 and 800 <= d3 <= 1000
    assert (d1, d2, d3) != (200, 400, 800), "randomize=True must spread the delays"
    for gap, delay in zip(gaps(handle.id), (d1, d2, d3), strict=True):
        assert 0.95 * delay / 1000 <= gap <= delay / 1000 + 1.5


def test_partial_retry_option_inherits_the_default_policy(engine: Engine) -> None:
    """TASK-3: retry {max_attempts: 5} runs with factor 2 / min 1000 / max 60000 / randomize."""
    # Given a task whose retry option only sets max_attempts (catch_error sees the policy)
    with engine.worker():
        # When it fails
        handle = five_attempts.trigger({})
        wait_for_status(handle.id, "FAILED")
    # Then the policy in force is the default one with 5 attempts
    ((_, _, policy, delay, _),) = catches(handle.id)
    assert policy == ct.RetryOptions(
        max_attempts=5, factor=2, min_timeout_in_ms=1000, max_timeout_in_ms=60000, randomize=True
    )
    assert 1000 <= delay < 2000


def test_no_policy_means_one_attempt_even_with_max_attempts(make_engine: Any) -> None:
    """TASK-4, D-1: with retries.default=None a task without retry makes exactly one attempt
    when it throws, even if triggered with max_attempts=5."""
    # Given a project that opts out of the default policy
    engine = make_engine(retries={"default": None})
    with engine.worker():
        # When a failing task without retry is triggered with max_attempts=5
        handle = no_retry_option.trigger({}, max_attempts=5)
        run = wait_for_status(handle.id)
    # Then it failed after one attempt
    assert run.status is RunStatus.FAILED and run.attempt_count == 1
    assert [n[0] for n in notes(handle.id)] == ["start", "fail"]


def test_without_configuration_the_builtin_default_policy_applies(engine: Engine) -> None:
    """D-1: with nothing configured a task without retry gets {3 attempts, factor 2, min 1000,
    max 10000, randomize}; the budget of 3 holds even when catch_error shortens the delays."""
    # Given a task without retry whose catch_error notes the policy and asks for 20 ms
    with engine.worker():
        # When it always fails
        handle = builtin_default.trigger({})
        run = wait_for_status(handle.id)
    # Then 3 attempts ran under the built-in policy, whose planned delays were randomized
    assert run.status is RunStatus.FAILED and run.attempt_count == 3
    assert run.max_attempts == 3
    seen = catches(handle.id)
    assert [c[1] for c in seen] == [1, 2, 3]
    assert all(
        c[2]
        == ct.RetryOptions(
            max_attempts=3,
            factor=2,
            min_timeout_in_ms=1000,
            max_timeout_in_ms=10000,
            randomize=True,
        )
        for c in seen
    )
    assert 1000 <= seen[0][3] < 2000 and 2000 <= seen[1][3] < 4000 and seen[2][3] is None


def test_trigger_max_attempts_replaces_the_policy_budget(engine: Engine) -> None:
    """TASK-5: max_attempts=1 on a 10-attempt task gives one attempt; max_attempts=2 gives two."""
    # Given a worker and a task whose policy allows 10 attempts
    with engine.worker():
        # When it is triggered with max_attempts 1 and 2
        one = ten_attempts.trigger({}, max_attempts=1)
        two = ten_attempts.trigger({}, max_attempts=2)
        runs = [wait_for_status(one.id), wait_for_status(two.id)]
    # Then the runs made exactly that many attempts
    assert [r.attempt_count for r in runs] == [1, 2]
    assert all(r.status is RunStatus.FAILED for r in runs)


def test_config_default_policy_applies_to_tasks_without_their_own(make_engine: Any) -> None:
    """CFG-2: with retries.default {max_attempts: 2} a task without retry makes 2 attempts; a
    task with retry {max_attempts: 4} makes 4."""
    # Given a project default of 2 attempts (short delays to stay fast)
    engine = make_engine(
        retries={"default": {"max_attempts": 2, "min_timeout_in_ms": 50, "randomize": False}}
    )
    with engine.worker():
        # When a task without retry and one with 4 attempts fail
        plain = no_retry_option.trigger({})
        own = four_attempts.trigger({})
        runs = [wait_for_status(plain.id), wait_for_status(own.id)]
    # Then each used its own budget
    assert [r.attempt_count for r in runs] == [2, 4]


# where the retry happens -------------------------------------------------------------------


def test_short_retry_delay_keeps_the_run_executing(engine: Engine) -> None:
    """TASK-14 (warm): a retry delay below the warm threshold (30 s) keeps the run EXECUTING
    between attempts; the next attempt runs in the same worker."""
    # Given a worker and a task whose first attempt works 0.1 s then fails with a 1 s retry
    # delay
    with engine.worker():
        # When it runs
        handle = warm_then_done.trigger({"succeed_on": 2, "work_s": 0.1})
        timeline = status_timeline(handle.id)
    # Then once executing it never went back to QUEUED
    statuses = [s for s, _ in timeline]
    assert statuses[statuses.index(RunStatus.EXECUTING) :] == [
        RunStatus.EXECUTING,
        RunStatus.COMPLETED,
    ]
    assert [n[1] for n in notes(handle.id) if n[0] == "attempt"] == [1, 2]


def test_long_retry_delay_puts_the_run_back_in_the_queue(make_engine: Any) -> None:
    """TASK-14 (cold), STATUS-4: a retry delay at or above the warm threshold (lowered to
    0.5 s here, 30 s by default) shows the run QUEUED for the whole delay, then it completes."""
    # Given a worker whose warm threshold is 0.5 s and a task whose first attempt works 0.1 s
    # then fails with a 1.5 s retry delay
    engine = make_engine(warm_retry_threshold=0.5)
    with engine.worker():
        # When the run fails once and succeeds on attempt 2
        handle = cold_then_done.trigger({"succeed_on": 2, "work_s": 0.1})
        timeline = status_timeline(handle.id)
        run = wait_for_status(handle.id, "COMPLETED")
    # Then it was QUEUED between the attempts for about the retry delay
    statuses = [s for s, _ in timeline]
    first_exec = statuses.index(RunStatus.EXECUTING)
    assert statuses[first_exec:] == [
        RunStatus.EXECUTING,
        RunStatus.QUEUED,
        RunStatus.EXECUTING,
        RunStatus.COMPLETED,
    ]
    # (timed by the record, not by when the poller happened to look: queued_at is when the
    # first attempt failed, attempt_started when the second one was claimed)
    record = engine.store.get_run(handle.id)
    queued_for = (int(record["attempt_started"]) - int(record["queued_at"])) / 1000
    assert 1.5 <= queued_for <= 1.5 + 1.5
    assert run.attempt_count == 2 and run.output == {"attempt": 2}


def test_attempt_numbers_count_up_within_one_run(engine: Engine) -> None:
    """TASK-31: ctx.attempt.number is 1, 2, 3 on successive attempts; ctx.run.id is the same."""
    # Given a task that succeeds on its third attempt
    with engine.worker():
        # When it runs
        handle = flaky.trigger({"succeed_on": 3})
        run = wait_for_status(handle.id, "COMPLETED")
    # Then the attempts were numbered 1..3 under the one run id
    attempts = [n for n in notes(handle.id) if n[0] == "attempt"]
    assert [a[1] for a in attempts] == [1, 2, 3]
    assert {a[2] for a in attempts} == {handle.id}
    assert run.output == {"attempt": 3}


def test_duration_is_the_sum_of_the_attempts_not_the_delays(engine: Engine) -> None:
    """RUNS-3, D-9: a run that failed twice then succeeded has attempt_count 3 and duration_ms
    ≈ the sum of its three attempts (the 300 ms retry delays are not counted)."""
    # Given a task whose attempts each work 200 ms, with 300 ms between attempts
    with engine.worker():
        # When it fails twice then succeeds
        handle = flaky.trigger({"succeed_on": 3, "work_s": 0.2})
        run = wait_for_status(handle.id, "COMPLETED")
    # Then the recorded duration covers the attempts only
    worked_ms = sum(n[3] for n in notes(handle.id) if n[0] == "attempt") * 1000
    assert run.attempt_count == 3
    # (each attempt's duration is truncated to whole milliseconds)
    assert worked_ms - 3 <= run.duration_ms <= worked_ms + 250


# DEVELOPMENT -------------------------------------------------------------------------------


def test_development_without_retries_in_dev_makes_one_attempt(make_engine: Any) -> None:
    """TASK-32, D-11: in DEVELOPMENT with retries.enabled_in_dev=False a failing task makes one
    attempt and its catch_error is not called."""
    # Given a DEVELOPMENT project that disables retries in dev
    engine = make_engine(environment="DEVELOPMENT", retries={"enabled_in_dev": False})
    with engine.worker():
        # When a task with a 3-attempt policy fails
        handle = dev_task.trigger({})
        run = wait_for_status(handle.id)
    # Then it failed after one attempt without asking catch_error
    assert run.status is RunStatus.FAILED and run.attempt_count == 1
    assert catches(handle.id) == []


def test_development_retries_by_default(make_engine: Any) -> None:
    """TASK-32, D-11: in DEVELOPMENT with enabled_in_dev unset, retries happen as usual."""
    # Given a DEVELOPMENT project that does not mention enabled_in_dev
    engine = make_engine(environment="DEVELOPMENT")
    with engine.worker():
        # When a task with a 3-attempt policy fails
        handle = dev_task.trigger({})
        run = wait_for_status(handle.id)
    # Then all three attempts ran and catch_error was asked each time
    assert run.attempt_count == 3
    assert [c[1] for c in catches(handle.id)] == [1, 2, 3]
