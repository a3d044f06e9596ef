"""End-to-end smoke: a run triggered through the public API completes on a real worker."""

from __future__ import annotations

import celery_trigger as ct

from .conftest import Engine, wait_for_status


@ct.task(id="smoke-add")
def smoke_add(payload: dict, ctx: ct.Context) -> dict:
    return {"sum": payload["a"] + payload["b"], "attempt": ctx.attempt.number}


def test_triggered_run_completes_with_output(engine: Engine) -> None:
    """STATUS-1, RUNS-1: QUEUED → EXECUTING → COMPLETED with the task's return value."""
    # Given a worker
    with engine.worker():
        # When a run is triggered
        handle = smoke_add.trigger({"a": 2, "b": 3})
        # Then it completes with the output and the timestamps in order
        run = wait_for_status(handle.id, "COMPLETED")
    assert run.output == {"sum": 5, "attempt": 1}
    assert run.is_completed and run.is_success and run.attempt_count == 1
    assert run.created_at <= run.started_at <= run.finished_at
