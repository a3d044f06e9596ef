"""The finish phase: one guarded store write per attempt outcome.

- success: ``COMPLETED`` with the output (an output over the size limit fails instead);
- retry: a warm retry sleeps in this worker under the same lease (delay below
  ``trigger_warm_retry_threshold``) and re-claims; a longer one goes back to ``QUEUED`` with
  a ``retry`` timer and ends the delivery;
- fail: the failed status with the error (a failed owner releases its idempotency key).
Every write is guarded by the lease token: a write refused means the run is no longer ours
(cancelled, taken over) and the delivery is dropped.
"""

from __future__ import annotations

import time

from ..._serialization import dumps
from ..._store.base import IdempotencyKey
from ..._vocab import FAILED_STATUSES, RunStatus, TimerKind
from ...errors import TaskRunError
from ...options import format_duration
from .. import concurrency, tracing
from ..clock import now_ms
from ..engine import Engine
from ..outage import retrying
from ..state import RunState
from ..waiters import notify_waiters
from .observe import attempt_errors
from .outcome import AttemptFailed, DropDelivery, EndAttempt, Outcome, failure
from .participants import Attempt, Participant

#: ``finish_attempt`` result: written, and runs are parked on this one (notify them).
HAS_WAITERS = 2


def _usage(state: RunState) -> dict[str, str]:
    return {
        "duration_ms": str(state.totals.duration_ms),
        "cost": repr(float(state.totals.cost)),
        "base_cost": repr(state.ctx.run.base_cost_in_cents),
    }


def _written(attempt: Attempt, participants: tuple[Participant, ...], written: int) -> None:
    if not written:
        raise DropDelivery("lease lost")
    for participant in participants:
        participant.after_finish(attempt, written == HAS_WAITERS)


def finish(
    attempt: Attempt, outcome: Outcome, participants: tuple[Participant, ...], lease_ms: int
) -> dict[str, str] | None:
    """Write the attempt's outcome. Returns None after a success, the record of the next
    attempt for a warm retry; raises ``EndAttempt`` (long retry) or ``AttemptFailed``."""
    engine, state = attempt.engine, attempt.state
    assert state is not None
    if outcome.kind == "success":
        output_json = dumps(outcome.output, what="output")
        size = len(output_json.encode())
        if size <= engine.settings.max_output_bytes:
            written = retrying(  # the output exists only here: outlast a store blip
                engine,
                lambda: engine.store.finish_attempt(
                    attempt.run_id,
                    attempt.token,
                    RunStatus.COMPLETED.value,
                    now_ms(),
                    fields={"output": output_json, "error": "", **_usage(state)},
                ),
            )
            _written(attempt, participants, written)
            return None
        outcome = failure(
            "TASK_OUTPUT_ERROR",
            f"output is {size} bytes, over the {engine.settings.max_output_bytes}-byte limit",
        )
    if outcome.kind == "retry":
        return _retry(attempt, outcome, lease_ms)
    _fail(attempt, outcome, participants)
    raise AssertionError("unreachable")  # _fail raises


def _retry(attempt: Attempt, outcome: Outcome, lease_ms: int) -> dict[str, str]:
    engine, state = attempt.engine, attempt.state
    assert state is not None
    store, run_id, token = engine.store, attempt.run_id, attempt.token
    if outcome.delay_ms < engine.settings.warm_retry_threshold * 1000:
        # Warm retry: the run stays EXECUTING and the next attempt runs in this worker.
        # The lease must outlive the pause, since nothing heartbeats while we sleep.
        store.renew_leases([(run_id, token)], now_ms(), lease_ms + int(outcome.delay_ms))
        store.transition(
            run_id, now_ms(), allowed=RunStatus.EXECUTING.value,
            fields=attempt_errors(state, outcome),
        )  # fmt: skip
        time.sleep(outcome.delay_ms / 1000)
        claim = store.claim_attempt(run_id, token, now_ms(), lease_ms, "warm", ())
        if claim.action != "ok" or claim.record is None:
            raise DropDelivery(claim.reason)
        return claim.record
    due = now_ms() + int(outcome.delay_ms)
    if not store.finish_attempt(
        run_id,
        token,
        RunStatus.QUEUED.value,
        now_ms(),
        fields={
            **_usage(state),
            "error": dumps(outcome.run_error.to_dict()),
            **attempt_errors(state, outcome),
            **tracing.kept_fields(state.record),  # the next attempt continues this trace
        },
        timers=[(TimerKind.RETRY.member(run_id), due)],
    ):
        raise DropDelivery("lease lost")
    raise EndAttempt(f"retry in {format_duration(outcome.delay_ms / 1000)}")


def _fail(attempt: Attempt, outcome: Outcome, participants: tuple[Participant, ...]) -> None:
    engine, state = attempt.engine, attempt.state
    assert state is not None
    error = outcome.run_error
    status = outcome.status
    key = state.record.get("idem_key")
    written = engine.store.finish_attempt(
        attempt.run_id,
        attempt.token,
        status.value,
        now_ms(),
        fields={**_usage(state), "error": dumps(error.to_dict()), **attempt_errors(state, outcome)},
        idempotency_key=IdempotencyKey(state.task_id, key) if key else None,
        release_key=status in FAILED_STATUSES,
    )
    _written(attempt, participants, written)
    raise AttemptFailed(error) from outcome.error  # Celery shows the user's own exception


def check_crash_budget(engine: Engine, run_id: str, token: str, record: dict[str, str]) -> None:
    """The previous attempt's worker died (its lease lapsed). Retry it as a new attempt while
    attempts remain; otherwise the run ends CRASHED (a poison run cannot loop forever)."""
    attempt = int(record.get("attempt") or 1)
    if attempt <= int(record.get("max_attempts") or 1):
        return
    error = TaskRunError(
        "TASK_RUN_CRASHED",
        f"the worker running attempt {attempt - 1} died "
        "(its lease lapsed) and no attempts are left",
    )
    engine.store.finish_attempt(
        run_id,
        token,
        RunStatus.CRASHED.value,
        now_ms(),
        fields={"error": dumps(error.to_dict()), "attempt": str(attempt - 1)},
    )
    notify_waiters(engine, run_id)
    raise DropDelivery("crashed")


def fail_parked(engine: Engine, run_id: str, outcome: Outcome) -> None:
    """A run that parked and broke the one-wait rule: WAITING → SYSTEM_FAILURE, no lease."""
    engine.store.transition(
        run_id,
        now_ms(),
        allowed=RunStatus.WAITING.value,
        status=outcome.status.value,
        remove_timers=[TimerKind.RESUME.member(run_id)],
        fields={"error": dumps(outcome.run_error.to_dict())},
    )
    notify_waiters(engine, run_id)
    raise AttemptFailed(outcome.run_error)


def expire_run(engine: Engine, run_id: str) -> bool:
    """TTL reached while the run was still queued: it becomes EXPIRED and never runs."""
    record = engine.store.get_run(run_id)
    if record is None or record.get("started"):
        return False  # only runs that never started can expire (a long retry is QUEUED too)
    ttl = float(record.get("ttl") or 0)
    error = TaskRunError(
        "TTL_EXPIRED", f"Run expired because the TTL ({format_duration(ttl)}) was reached"
    )
    stamp = now_ms()
    result = engine.store.transition(
        run_id,
        stamp,
        allowed=RunStatus.QUEUED.value,
        status=RunStatus.EXPIRED.value,
        remove_timers=[
            TimerKind.PUBLISH.member(run_id),
            TimerKind.TTL.member(run_id),
            TimerKind.RETRY.member(run_id),
        ],
        fields={"expired": str(stamp), "error": dumps(error.to_dict())},
    )
    if result.ok:
        notify_waiters(engine, run_id)
        concurrency.release(engine, result.record)  # it may have waited for a slot
        if record.get("idem_key"):
            # Only while this run still owns it: a reset may have handed it to a new run.
            engine.store.release_idempotency_key(
                record["task"], record["idem_key"], run_id, clear_record=False
            )
    return result.ok
