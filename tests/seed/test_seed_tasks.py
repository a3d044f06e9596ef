"""Seed §1 (tasks, retries, catch_error, ctx) as the seed writes it, in Python: the
``processData`` example with its retry options, and ``catchError`` ending a run with
``AbortTaskRunError`` (D-19). Task ids start with ``seed1-``."""

from __future__ import annotations

import uuid
from typing import Any

import celery_trigger as ct
from celery_trigger.status import RunStatus
from tests.integration.conftest import Engine, wait_for_status


def test_seed_section_1_task_with_retry_ctx_and_catch_error(engine: Engine) -> None:
    """§1.1, §1.2, §1.8, TASK-31, D-19: the seed's task example with ``retry`` options reads
    ``ctx.machine.preset`` and ``ctx.run``; its ``catch_error`` aborts a bad payload."""
    failures: list[str] = []

    # Given the seed's task (retry options as in §1.2's example) ...
    def catch_error(*, payload: Any, error: BaseException, **_: Any) -> Any:
        if payload.get("bad"):
            raise ct.AbortTaskRunError(f"bad payload: {error}")
        return None

    @ct.task(
        id=f"seed1-process-data-{uuid.uuid4().hex[:6]}",
        retry={"max_attempts": 10, "factor": 1.8, "min_timeout_in_ms": 500,
               "max_timeout_in_ms": 30_000, "randomize": False},
        machine="small-2x",
        catch_error=catch_error,
        on_failure=lambda *, error, **_: failures.append(str(error)),
    )  # fmt: skip
    def process_data(payload: dict[str, Any], ctx: ct.Context) -> dict[str, Any]:
        if payload.get("bad"):
            raise ValueError("no data")
        return {"processed": len(payload["data"]), "machine": ctx.machine.preset,
                "attempt": ctx.attempt.number, "version": ctx.run.version}  # fmt: skip

    with engine.worker(trigger_version="1.0.0"):  # D-21: a worker serving that version
        # When it is triggered with good and bad payloads
        good = process_data.trigger({"data": [1, 2, 3]}, version="1.0.0")
        bad = process_data.trigger({"bad": True})
        ok_run, bad_run = wait_for_status(good.id), wait_for_status(bad.id)
    # Then the good run completes with what ctx showed
    assert ok_run.status is RunStatus.COMPLETED
    assert ok_run.output == {"processed": 3, "machine": "small-2x", "attempt": 1,
                             "version": "1.0.0"}  # fmt: skip
    # and the bad one is FAILED after one attempt, on_failure called with the abort
    assert (bad_run.status, bad_run.attempt_count) == (RunStatus.FAILED, 1)
    assert failures == ["bad payload: no data"]
