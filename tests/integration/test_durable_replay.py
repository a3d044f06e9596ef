"""Replay: code before a parked wait re-executes on resume, answered from the journal.

Every celery-trigger operation before the resume point returns what it returned the first
time (same child ids, same step results); a different operation at a recorded position is a
``NonDeterminismError`` that fails the run without retry (DESIGN §4, D-17).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import celery_trigger as ct

from .conftest import wait_for_status

FAST3 = {"max_attempts": 3, "min_timeout_in_ms": 50, "max_timeout_in_ms": 50, "randomize": False}
COUNTS: Counter[str] = Counter()
EVENTS: list[tuple[Any, ...]] = []


@ct.task(id="dr-child")
def dr_child(payload: int) -> int:
    COUNTS[f"child:{payload}"] += 1
    return payload


@ct.task(id="dr-other")
def dr_other(payload: int) -> int:
    return payload


def _pick() -> dict[str, Any]:
    COUNTS["pick"] += 1
    return {"token": uuid.uuid4().hex, "pair": (1, 2)}


@ct.task(id="dr-replayed")
def dr_replayed(payload: None, ctx: ct.Context) -> dict:
    EVENTS.append(("before", ctx.is_replaying, ctx.attempt.number, ctx.run.id))
    child = dr_child.trigger(1)
    batch = dr_child.batch_trigger([{"payload": 2}, {"payload": 3}])
    picked = ct.steps.run("pick", _pick)
    start = time.monotonic()
    ct.wait.for_(seconds=0.3)  # in-process (threshold 0.5 s): skipped while replaying
    EVENTS.append(("short", ctx.is_replaying, time.monotonic() - start))
    ct.wait.for_(seconds=0.8)
    EVENTS.append(("after", ctx.is_replaying, ctx.attempt.number, ctx.run.id))
    return {"child": child.id, "batch": batch.runs, "picked": picked}


def test_code_before_the_wait_replays_from_the_journal(make_engine) -> None:  # type: ignore[no-untyped-def]
    """D-17, DESIGN §4: same run id and attempt after resume; trigger and batch_trigger before
    the wait create their children once; steps.run's function runs once and replays its JSON
    result; ctx.is_replaying is True before the resume point and False after."""
    engine = make_engine(wait_threshold=0.5)
    COUNTS.clear()
    EVENTS.clear()
    with engine.worker(concurrency=2):
        # Given a run that triggers children and runs a step before a parked wait
        handle = dr_replayed.trigger(None)
        wait_for_status(handle.id, "WAITING")
        # When it resumes
        run = wait_for_status(handle.id, timeout=20)
        for n in (1, 2, 3):
            wait_for_status(run.output["child"] if n == 1 else run.output["batch"][n - 2])
    # Then the replay answered every operation from the journal
    assert run.status == ct.RunStatus.COMPLETED, run.error
    run_id = handle.id
    assert [e for e in EVENTS if e[0] != "short"] == [
        ("before", False, 1, run_id),
        ("before", True, 1, run_id),
        ("after", False, 1, run_id),
    ]
    children = ct.runs.retrieve(run_id).children
    assert children == [run.output["child"], *run.output["batch"]]
    assert COUNTS["pick"] == 1 and all(COUNTS[f"child:{n}"] == 1 for n in (1, 2, 3))
    assert run.output["picked"]["pair"] == [1, 2]
    assert run.attempt_count == 1
    shorts = [e for e in EVENTS if e[0] == "short"]
    assert [e[1] for e in shorts] == [False, True]
    assert shorts[0][2] >= 0.3 and shorts[1][2] < 0.2


@ct.task(id="dr-nondet", retry=FAST3)
def dr_nondet(payload: None) -> str:
    COUNTS["nondet"] += 1
    if COUNTS["nondet"] == 1:
        dr_child.trigger(10)
    else:
        dr_other.trigger(10)
    ct.wait.for_(seconds=0.8)
    return "unreachable"


def test_a_different_operation_on_replay_fails_without_retry(make_engine) -> None:  # type: ignore[no-untyped-def]
    """Issue §1 (NonDeterminismError), D-17: a run that triggers another task at the same
    position on resume ends FAILED, is not retried, and the message points to steps.run."""
    engine = make_engine(wait_threshold=0.5)
    COUNTS.clear()
    with engine.worker(concurrency=2):
        # Given a run whose code before the wait changes between executions
        handle = dr_nondet.trigger(None)
        # When it resumes
        run = wait_for_status(handle.id, timeout=20)
    # Then it failed on replay, in attempt 1 of 3
    assert run.status == ct.RunStatus.FAILED
    assert run.error is not None and run.error.name == "NonDeterminismError"
    assert "steps.run" in run.error.message and "dr-other" in run.error.message
    assert run.attempt_count == 1 and COUNTS["nondet"] == 2
    assert len(ct.runs.retrieve(handle.id).children) == 1


@ct.task(id="dr-step-error", retry=FAST3)
def dr_step_error(payload: None, ctx: ct.Context) -> dict:
    def flaky() -> int:
        COUNTS[f"flaky:{ctx.attempt.number}"] += 1
        if ctx.attempt.number == 1:
            raise RuntimeError("step failed")
        return ctx.attempt.number

    value = ct.steps.run("flaky", flaky)
    ct.wait.for_(seconds=0.8)
    return {"value": value, "attempt": ctx.attempt.number}


def test_a_failing_step_is_not_recorded_and_runs_again_in_the_next_attempt(make_engine) -> None:  # type: ignore[no-untyped-def]
    """DESIGN §4 (the journal belongs to the attempt), D-17: a step that raises records
    nothing; the retry runs it again, and its result then survives the resume."""
    engine = make_engine(wait_threshold=0.5)
    COUNTS.clear()
    with engine.worker(concurrency=1):
        # Given a step that fails in attempt 1 and succeeds in attempt 2
        handle = dr_step_error.trigger(None)
        # When the run retries, parks and resumes
        run = wait_for_status(handle.id, timeout=20)
    # Then the step ran once per attempt and was replayed after the resume
    assert run.output == {"value": 2, "attempt": 2}
    assert COUNTS["flaky:1"] == 1 and COUNTS["flaky:2"] == 1
