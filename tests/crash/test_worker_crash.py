"""Crash safety with real worker subprocesses killed by SIGKILL (issue 3 §8, DESIGN §1).

Each test kills a whole ``celery worker`` (main process and pool children) at a chosen
moment and checks that no run is lost and none is executed twice at the same time.
"""

from __future__ import annotations

import pytest

import celery_trigger as ct

from ..integration.conftest import wait_for
from .conftest import CrashEnv, logs

pytestmark = [pytest.mark.crash, pytest.mark.slow, pytest.mark.brokers]


def _status(run_id: str) -> ct.RunStatus:
    return ct.runs.retrieve(run_id).status


def test_run_executing_on_a_killed_worker_completes_on_another(crash_env: CrashEnv) -> None:
    """A worker SIGKILLed mid-run: the run's lease lapses and another worker runs it."""
    # Given a run executing on worker A
    a = crash_env.start_worker()
    handle = ct.tasks.trigger("crash-slow", {"seconds": 2.0})
    wait_for(
        lambda: crash_env.marks_named(f"start-{handle.id}-1"),
        timeout=30,
        message="the run never started",
    )
    # When worker A dies (no ack, no clean-up) and worker B is running
    a.kill()
    crash_env.start_worker()
    # Then the run completes on B in a new attempt, and never ran twice at once
    run = wait_for(
        lambda: (r := ct.runs.retrieve(handle.id)).is_completed and r,
        timeout=45,
        message=f"run not recovered; logs:\n{logs(crash_env)}",
    )
    assert run.status == ct.RunStatus.COMPLETED, run.error
    assert run.output["attempt"] == 2
    assert len(crash_env.marks_named(f"end-{handle.id}")) == 1


def test_parked_run_on_a_killed_worker_resumes_once(crash_env: CrashEnv) -> None:
    """A worker SIGKILLed while a run is parked: the run resumes once, on another worker."""
    # Given a run parked in a 2-second wait on worker A
    a = crash_env.start_worker()
    handle = ct.tasks.trigger("crash-parker", {"seconds": 2.0})
    wait_for(lambda: _status(handle.id) == ct.RunStatus.WAITING, timeout=30)
    # When worker A dies and worker B starts
    a.kill()
    crash_env.start_worker()
    # Then the run resumes once, finishes its child wait, and completes in attempt 1
    run = wait_for(
        lambda: (r := ct.runs.retrieve(handle.id)).is_completed and r,
        timeout=45,
        message=f"parked run lost; logs:\n{logs(crash_env)}",
    )
    assert run.status == ct.RunStatus.COMPLETED, run.error
    assert run.output == {"child": {"n": 7}, "attempt": 1}
    assert len(crash_env.marks_named(f"resumed-{handle.id}")) == 2  # see the test below


def test_worker_killed_while_publishing_a_resume_loses_nothing(crash_env: CrashEnv) -> None:
    """The timer service dies between claiming a resume and publishing it: the claim lapses,
    another worker's timer service claims it again, and the run resumes once."""
    # Given a worker whose timer service dies when it is about to publish a resume
    a = crash_env.start_worker(env={"CT_CRASH_KILL_ON_RESUME": "1"})
    handle = ct.tasks.trigger("crash-parker", {"seconds": 1.0})
    # When the run's wait is due, that worker claims the resume timer and dies
    wait_for(
        lambda: crash_env.marks_named(f"dying-on-resume-{handle.id}"),
        timeout=30,
        message=f"the resume was never claimed; logs:\n{logs(crash_env)}",
    )
    a.kill()
    crash_env.start_worker()
    # Then a healthy worker resumes the run (exactly once) and it completes
    run = wait_for(
        lambda: (r := ct.runs.retrieve(handle.id)).is_completed and r,
        timeout=45,
        message=f"resume lost; logs:\n{logs(crash_env)}",
    )
    assert run.status == ct.RunStatus.COMPLETED, run.error
    assert run.output == {"child": {"n": 7}, "attempt": 1}
    # Code after the duration wait runs once per resume: after the wait, and again (replayed)
    # after the child wait. A duplicated resume would add a third execution.
    assert len(crash_env.marks_named(f"resumed-{handle.id}")) == 2
