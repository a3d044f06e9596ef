"""What makes attempts observable (the ``RunLogging`` and ``SpanAttributes`` participants
call it): readable failed attempts and the ``ct.*`` attributes of the attempt's span.

A failed attempt that will be retried is logged once at WARNING on ``celery_trigger.run``
with the delay and the user's own exception (traceback included) as ``exc_info``. The final
failure is logged by Celery itself, once, with the user's own exception (``_celery/task.py``
re-raises it). Both also go to the run's own log (``runs.logs``).
"""

from __future__ import annotations

from ..._serialization import dumps, loads
from ...options import format_duration
from .. import runlog, tracing
from ..state import RunState
from .outcome import Outcome


def log_failure(outcome: Outcome) -> None:
    """One record for a failed attempt (retry or final); nothing outside an attempt."""
    log = runlog.current()
    if log is None or outcome.kind not in ("retry", "fail"):
        return
    error = outcome.run_error
    attributes = {"error.name": error.name, "error.message": error.message}
    head = f"{log.task_id} run {log.run_id} attempt {log.attempt} failed"
    if outcome.kind == "fail":
        message = f"{head}: {error.name}: {error.message}"
        runlog.emit("error", message, None, attributes, stdlib=False, force=True)
        return
    delay = format_duration(outcome.delay_ms / 1000)
    message = f"{head}, retrying in {delay}: {error.name}: {error.message}"
    exc = outcome.error
    runlog.std_logger.warning(
        message,
        exc_info=(type(exc), exc, exc.__traceback__) if exc is not None else None,
        extra=runlog.std_extra(log, attributes),
    )
    attributes["retry.delay_ms"] = str(int(outcome.delay_ms))
    runlog.emit("warn", message, None, attributes, stdlib=False, force=True)


def attempt_errors(state: RunState, outcome: Outcome) -> dict[str, str]:
    """The record field keeping each failed attempt's error (``run.attempts[i].error``)."""
    kept = loads(state.record.get("attempt_errors")) or []
    kept = [e for e in kept if int(e.get("attempt", 0)) != state.attempt]
    kept.append({"attempt": state.attempt, **outcome.run_error.to_dict()})
    return {"attempt_errors": dumps(kept, what="attempt errors")}


def span_attributes(state: RunState) -> None:
    """``ct.*`` attributes on the current span (no-op without OpenTelemetry)."""
    ctx = state.ctx
    tracing.set_attributes(
        {
            "ct.run_id": state.run_id,
            "ct.task_id": state.task_id,
            "ct.attempt": state.attempt,
            "ct.queue": ctx.queue.name,
            "ct.machine": ctx.machine.name,
            "ct.tags": list(ctx.run.tags),
            "ct.is_replay": bool(ctx.run.is_replay),
        }
    )
