"""Executing a delivered run: claim, attempts, hooks, retry decisions, completion.

``execute`` is called by the Celery task base class for every delivered message. It claims
the run under a lease (a duplicate delivery is dropped), runs attempts with their hooks in
the documented order (SEMANTICS §1.5), and ends each attempt with exactly one guarded store
write: ``COMPLETED``/a failed status, a warm retry in this worker (delay below
``trigger_warm_retry_threshold``), or ``QUEUED`` with a retry timer (longer delays).
"""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .. import _definition
from .._durable import Journal, LeaseLost, Park, load_journal
from .._serialization import dumps, loads
from .._setup import Trigger
from .._store.base import IdempotencyKey
from ..context import (
    Context,
    _current,
)
from ..errors import (
    AbortTaskRunError,
    ConcurrentWaitError,
    NonDeterminismError,
    PayloadValidationError,
    TaskRunError,
)
from ..options import RetryOptions, format_duration
from ..status import FAILED_STATUSES, RunStatus
from . import concurrency
from . import hooks as hk
from .backoff import next_retry_delay_ms
from .contexts import build_context
from .metadata import end_attempt as end_metadata
from .state import RunState, reset_state, set_state
from .waiters import notify_waiters
from .watchdog import MaxDurationExceeded, RunCancelled


class DropDelivery(BaseException):
    """This delivery must do nothing (duplicate, final or cancelled run)."""


class EndAttempt(BaseException):
    """The attempt ended without a final outcome; the run continues later (no message)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AttemptFailed(Exception):
    """Raised to Celery when a run ends failed, so the task shows FAILURE like any task."""

    def __init__(self, error: TaskRunError | str) -> None:
        # A str when a result backend rebuilds the exception from its stored message.
        if isinstance(error, str):
            name, _, message = error.partition(": ")
            error = TaskRunError(name if message else "Error", message or name)
        super().__init__(f"{error.name}: {error.message}")
        self.error = error

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable: the prefork pool sends the exception back to the main process.
        return (type(self), (self.error,))


@dataclass
class Outcome:
    kind: str  # "success" | "retry" | "fail" | "park"
    output: Any = None
    reason: str = ""
    error: BaseException | None = None
    error_record: TaskRunError | None = None
    status: RunStatus = RunStatus.FAILED
    delay_ms: float = 0.0


#: ``finish_attempt`` result: written, and runs are parked on this one (notify them).
HAS_WAITERS = 2


def now_ms() -> int:
    return int(time.time() * 1000)


def error_record(exc: BaseException, name: str | None = None) -> TaskRunError:
    if isinstance(exc, TaskRunError):
        return exc
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return TaskRunError(name or type(exc).__name__, str(exc), stack)


def _drop_timers(run_id: str) -> list[str]:
    return [f"pub|{run_id}", f"ttl|{run_id}", f"resume|{run_id}"]


def execute(
    trigger: Trigger,
    run_id: str,
    task_id: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    embed: dict[str, Any] | None = None,
    slot: str | None = None,
) -> Any:
    """Run one delivery of ``run_id``. Returns the output or raises (see module doc).

    However the delivery ends, a concurrency slot its claim took is given back and handed
    to the next waiting run (``concurrency.release``; a no-op while the run is EXECUTING
    again, and for runs of unlimited queues, which hold none).
    """
    claimed: dict[str, Any] = {}
    try:
        return _execute(
            trigger, run_id, task_id, args, kwargs, embed=embed, claimed=claimed, slot=slot
        )
    finally:
        concurrency.release(trigger, claimed.get("record"))


def _execute(
    trigger: Trigger,
    run_id: str,
    task_id: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    embed: dict[str, Any] | None,
    claimed: dict[str, Any],
    slot: str | None,
) -> Any:
    """Claim the run and run its attempts (``claimed["record"]``: the claimed record;
    ``slot``: the message's ``ct_slot`` header, the run's sub-queue when not the default).

    ``embed`` holds the message's canvas links (callbacks, errbacks, chain, chord); they are
    kept on the run so the deliveries celery-trigger publishes later (long retries, resumes)
    carry them too, and the chain continues when the run finally succeeds.
    """
    from .._trigger import create_from_message

    store = trigger.store
    lease_ms = int(trigger.settings.lease_seconds * 1000)
    token = uuid.uuid4().hex
    scope = concurrency.hint(trigger, task_id, slot)
    claim = store.claim_attempt(
        run_id, token, now_ms(), lease_ms, "new", _drop_timers(run_id), scope=scope
    )
    if claim.action == "missing":
        create_from_message(trigger, run_id, task_id, args, kwargs)
        claim = store.claim_attempt(run_id, token, now_ms(), lease_ms, "new", (), scope=scope)
    if claim.action != "ok" or claim.record is None:
        if claim.reason == "ttl":
            expire_run(trigger, run_id)
        raise DropDelivery(claim.reason)  # "queued": over its queue's limit, it waits
    defn = _definition.get(task_id)
    record = claimed["record"] = claim.record
    if record.get("takeover") == "1":
        _check_crash_budget(trigger, run_id, token, record)
    if embed is not None and not record.get("embed"):
        text = dumps(embed, what="canvas links")
        store.transition(run_id, now_ms(), allowed="EXECUTING", fields={"embed": text})
        record["embed"] = text
    watchdog = trigger.watchdog
    totals = {
        "duration_ms": int(record.get("duration_ms") or 0),
        "cost": float(record.get("cost") or 0),
    }
    while True:
        ctx = build_context(trigger, defn, record)
        resumed = record.get("resumed") == "1"
        journal = load_journal(store.journal(run_id)) if resumed else Journal()
        used_ms = int(record.get("attempt_ms") or 0) if resumed else 0
        max_duration = int(record["max_duration"]) if record.get("max_duration") else None
        budget = max(0.001, max_duration - used_ms / 1000) if max_duration else None
        watch = watchdog.start(run_id, token, budget)
        state = RunState(
            run_id=run_id,
            task_id=task_id,
            root_id=record.get("root") or run_id,
            depth=int(record.get("depth") or 0),
            attempt=ctx.attempt.number,
            token=token,
            is_test=record.get("is_test") == "1",
            ctx=ctx,
            record=record,
            watch=watch,
        )
        started = time.monotonic()
        state.extra.update(
            journal=journal,
            totals=totals,
            started_mono=started,
            attempt_ms_before=used_ms,
            resumed=resumed,
            retries_off=trigger.settings.environment == "DEVELOPMENT"
            and not trigger.config.retries_enabled_in_dev,
        )
        object.__setattr__(ctx, "_journal", journal)
        try:
            outcome = run_attempt(trigger, defn, state)
        except RunCancelled:
            raise DropDelivery("cancelled") from None
        finally:
            watchdog.stop(run_id)
            # Every attempt's last metadata writes are stored before its outcome (META-10).
            end_metadata(state)
        if journal.concurrent:
            outcome = Outcome(
                "fail",
                error_record=TaskRunError(
                    "TASK_DID_CONCURRENT_WAIT",
                    "Parallel waits are not supported, e.g. using "
                    "asyncio.gather or threads to wait on several runs: use "
                    "batch_trigger_and_wait instead",
                ),
                status=RunStatus.SYSTEM_FAILURE,
            )
            if journal.parked:
                _fail_parked(trigger, state, outcome)
        elif outcome.kind == "park":
            raise EndAttempt(outcome.reason)
        elapsed = int((time.monotonic() - started) * 1000)
        totals["duration_ms"] += elapsed
        totals["cost"] += elapsed * ctx.machine.cents_per_ms
        record = _conclude(trigger, state, outcome, totals, lease_ms)
        if outcome.kind == "success":
            return outcome.output


def _conclude(
    trigger: Trigger, state: RunState, outcome: Outcome, totals: dict[str, Any], lease_ms: int
) -> dict[str, str]:
    """Write the attempt's outcome; return the record of the next warm attempt."""
    store = trigger.store
    run_id, token = state.run_id, state.token
    usage = {
        "duration_ms": str(totals["duration_ms"]),
        "cost": repr(float(totals["cost"])),
        "base_cost": repr(state.ctx.run.base_cost_in_cents),
    }
    if outcome.kind == "success":
        output_json = dumps(outcome.output, what="output")
        if len(output_json.encode()) > trigger.settings.max_output_bytes:
            outcome = Outcome(
                "fail",
                error_record=TaskRunError(
                    "TASK_OUTPUT_ERROR",
                    f"output is {len(output_json.encode())} bytes, over the "
                    f"{trigger.settings.max_output_bytes}-byte limit",
                ),
            )
        else:
            written = store.finish_attempt(
                run_id,
                token,
                RunStatus.COMPLETED.value,
                now_ms(),
                fields={"output": output_json, **usage},
            )
            if not written:
                raise DropDelivery("lease lost")
            if written == HAS_WAITERS:
                notify_waiters(trigger, run_id)
            return state.record
    if outcome.kind == "retry":
        if outcome.delay_ms < trigger.settings.warm_retry_threshold * 1000:
            # Warm retry: the run stays EXECUTING and the next attempt runs in this worker.
            # The lease must outlive the pause, since nothing heartbeats while we sleep.
            store.renew_leases([(run_id, token)], now_ms(), lease_ms + int(outcome.delay_ms))
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
            fields={**usage, "error": dumps(_err(outcome).to_dict())},
            timers=[(f"retry|{run_id}", due)],
        ):
            raise DropDelivery("lease lost")
        raise EndAttempt(f"retry in {format_duration(outcome.delay_ms / 1000)}")
    error = _err(outcome)
    status = outcome.status
    key = state.record.get("idem_key")
    written = store.finish_attempt(
        run_id,
        token,
        status.value,
        now_ms(),
        fields={**usage, "error": dumps(error.to_dict())},
        idempotency_key=IdempotencyKey(state.task_id, key) if key else None,
        release_key=status in FAILED_STATUSES,
    )
    if not written:
        raise DropDelivery("lease lost")
    if written == HAS_WAITERS:
        notify_waiters(trigger, run_id)
    raise AttemptFailed(error)


def _check_crash_budget(trigger: Trigger, run_id: str, token: str, record: dict[str, str]) -> None:
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
    trigger.store.finish_attempt(
        run_id,
        token,
        RunStatus.CRASHED.value,
        now_ms(),
        fields={"error": dumps(error.to_dict()), "attempt": str(attempt - 1)},
    )
    notify_waiters(trigger, run_id)
    raise DropDelivery("crashed")


def _fail_parked(trigger: Trigger, state: RunState, outcome: Outcome) -> None:
    """A run that parked and broke the one-wait rule: WAITING → SYSTEM_FAILURE, no lease."""
    trigger.store.transition(
        state.run_id,
        now_ms(),
        allowed="WAITING",
        status=outcome.status.value,
        remove_timers=[f"resume|{state.run_id}"],
        fields={"error": dumps(_err(outcome).to_dict())},
    )
    notify_waiters(trigger, state.run_id)
    raise AttemptFailed(_err(outcome))


def _err(outcome: Outcome) -> TaskRunError:
    if outcome.error_record is not None:
        return outcome.error_record
    assert outcome.error is not None
    return error_record(outcome.error)


def _policy(record: Mapping[str, str]) -> RetryOptions | None:
    text = record.get("retry")
    if not text:
        return None
    data = loads(text)
    data["max_attempts"] = int(record.get("max_attempts") or data.get("max_attempts") or 1)
    return RetryOptions(**data)


#: Control-flow exceptions that pass through hook and error handling untouched.
_PASS_THROUGH = (MaxDurationExceeded, RunCancelled, EndAttempt, DropDelivery, Park, LeaseLost)


def run_attempt(trigger: Trigger, defn: Any, state: RunState) -> Outcome:
    """One attempt with its hooks; never raises for user errors (returns an Outcome)."""
    record, ctx = state.record, state.ctx
    if defn is None:
        return Outcome(
            "fail",
            error_record=TaskRunError(
                "COULD_NOT_FIND_TASK",
                f"no task with id {state.task_id!r} is defined in this worker",
            ),
            status=RunStatus.SYSTEM_FAILURE,
        )
    try:
        payload = defn.parse_payload(loads(record.get("payload")))
    except PayloadValidationError as exc:
        return Outcome(
            "fail", error_record=TaskRunError("TASK_INPUT_ERROR", f"TaskPayloadParsedError: {exc}")
        )
    ctx_token = _current.set(ctx)
    state_token = set_state(state)
    state.extra["payload"] = payload
    try:
        common: dict[str, Any] = {"payload": payload, "ctx": ctx, "task": defn}
        # A resumed attempt re-enters the run function only: middleware, init and the
        # start hooks ran when the attempt began (SEMANTICS §1.5, D-17).
        middleware = [] if state.extra.get("resumed") else hk.chain("middleware", defn)
        box: dict[str, Any] = {}

        def inner() -> None:
            box["outcome"] = _run_with_hooks(trigger, defn, state, payload, common)

        try:
            _run_middleware(middleware, common, inner)
        except _PASS_THROUGH:
            raise
        except Exception as exc:  # run errors become Outcomes in inner(): this is middleware
            return _middleware_failure(state, exc)
        outcome: Outcome = box.get("outcome", Outcome("success"))
        return outcome
    except Park as parked:
        return Outcome("park", reason=parked.reason)
    except LeaseLost:
        raise DropDelivery("lease lost") from None
    except MaxDurationExceeded:
        return Outcome(
            "fail",
            error_record=TaskRunError(
                "MAX_DURATION_EXCEEDED",
                f"Run exceeded maximum compute time (maxDuration) of "
                f"{record.get('max_duration')} seconds",
            ),
            status=RunStatus.TIMED_OUT,
        )
    finally:
        reset_state(state_token)
        _current.reset(ctx_token)


def _run_middleware(chain: list[Any], common: dict[str, Any], inner: Any) -> None:
    def step(index: int) -> None:
        if index == len(chain):
            inner()
            return
        hk.call(chain[index], **common, next=lambda: step(index + 1))

    step(0)


def _middleware_failure(state: RunState, exc: BaseException) -> Outcome:
    """Middleware errors skip catch_error/on_failure and retry under the policy (§1.5)."""
    policy = _policy(state.record)
    delay = next_retry_delay_ms(policy, state.attempt) if policy else None
    if state.extra.get("retries_off"):
        delay = None
    record = error_record(exc, "TASK_MIDDLEWARE_ERROR")
    if delay is None:
        return Outcome("fail", error_record=record)
    return Outcome("retry", error_record=record, delay_ms=delay)


def _run_with_hooks(
    trigger: Trigger, defn: Any, state: RunState, payload: Any, common: dict[str, Any]
) -> Outcome:
    config = trigger.config
    ctx = state.ctx
    try:
        init: dict[str, Any] = {}
        if not state.extra.get("resumed"):
            for fn in hk.chain("init", defn, [config.init] if config.init else None):
                result = hk.call(fn, **common)
                if isinstance(result, Mapping):
                    init.update(result)
        common["init"] = init
        if not state.extra.get("resumed"):
            if ctx.attempt.number == 1:
                hk.run_all(
                    hk.chain("on_start", defn, [config.on_start] if config.on_start else None),
                    swallow=False,
                    **common,
                )
            hk.run_all(hk.chain("on_start_attempt", defn), swallow=False, **common)
        output = call_run(defn, payload, ctx, init)
    except _PASS_THROUGH:
        raise
    except Exception as exc:
        return _on_error(trigger, defn, state, exc, common)
    hk.run_all(
        hk.chain("on_success", defn, [config.on_success] if config.on_success else None),
        swallow=True,
        output=output,
        **common,
    )
    hk.run_all(
        hk.chain("on_complete", defn), swallow=True, result={"ok": True, "data": output}, **common
    )
    try:
        hk.run_all(hk.chain("cleanup", defn), swallow=False, **common)
    except Exception as exc:
        return _on_error(trigger, defn, state, exc, common, cleanup_done=True)
    return Outcome("success", output=output)


def call_run(defn: Any, payload: Any, ctx: Context, init: dict[str, Any]) -> Any:
    """Call the run function (sync, or async on the process's event loop).

    A run function with an ``init`` parameter gets the merged init results as ``init=``.
    """
    args: tuple[Any, ...] = (payload, ctx) if defn.takes_ctx else (payload,)
    kwargs = {"init": init} if defn.takes_init else {}
    if defn.is_async:
        from .aio import run_coroutine

        return run_coroutine(defn.fn(*args, **kwargs))
    return defn.fn(*args, **kwargs)


def _on_error(
    trigger: Trigger,
    defn: Any,
    state: RunState,
    exc: Exception,
    common: dict[str, Any],
    cleanup_done: bool = False,
) -> Outcome:
    """Decide retry or failure (§1.3) and run the failure hooks in order (§1.5)."""
    config = trigger.config
    ctx = state.ctx
    policy = _policy(state.record)
    retries_off = (
        trigger.settings.environment == "DEVELOPMENT" and not config.retries_enabled_in_dev
    )
    error: BaseException = exc
    delay: float | None = None
    journal = state.extra.get("journal")
    if isinstance(exc, ConcurrentWaitError) or (journal is not None and journal.concurrent):
        if not cleanup_done:
            _cleanup_quietly(defn, common)
        return Outcome("fail", error=exc, status=RunStatus.SYSTEM_FAILURE)
    if not isinstance(exc, (AbortTaskRunError, NonDeterminismError)) and not retries_off:
        default_delay = next_retry_delay_ms(policy, ctx.attempt.number) if policy else None
        retry_at = (
            None
            if default_delay is None
            else datetime.now(timezone.utc).timestamp() + default_delay / 1000
        )
        try:
            own = defn.hooks.get("catch_error")
            # The task's own catch_error is asked first, then the globals (§1.3).
            fns = ([own] if own else []) + _definition.global_hooks.get("catch_error")
            decision = hk.resolve_catch_error(
                fns,
                datetime.now(timezone.utc),
                default_delay,
                error=exc,
                retry=policy,
                retry_delay_in_ms=default_delay,
                retry_at=None
                if retry_at is None
                else datetime.fromtimestamp(retry_at, tz=timezone.utc),
                **common,
            )
        except Exception as hook_exc:
            if not cleanup_done:
                _cleanup_quietly(defn, common)
            return Outcome(
                "fail",
                error_record=error_record(hook_exc, "HANDLE_ERROR_ERROR"),
                status=RunStatus.CRASHED,
            )
        delay = decision.retry_delay_ms
        if decision.error is not None:
            error = decision.error
        if delay is not None and (policy is None or ctx.attempt.number >= policy.max_attempts):
            delay = None  # catch_error cannot extend the attempt budget (TASK-12)
    if delay is not None:
        if not cleanup_done:
            hk.run_all(hk.chain("cleanup", defn), swallow=True, **common)
        return Outcome("retry", error=error, delay_ms=delay)
    hk.run_all(
        hk.chain("on_failure", defn, [config.on_failure] if config.on_failure else None),
        swallow=True,
        error=error,
        **common,
    )
    hk.run_all(
        hk.chain("on_complete", defn), swallow=True, result={"ok": False, "error": error}, **common
    )
    if not cleanup_done:
        hk.run_all(hk.chain("cleanup", defn), swallow=True, **common)
    return Outcome("fail", error=error)


def _cleanup_quietly(defn: Any, common: dict[str, Any]) -> None:
    hk.run_all(hk.chain("cleanup", defn), swallow=True, **common)


def expire_run(trigger: Trigger, run_id: str) -> bool:
    """TTL reached while the run was still queued: it becomes EXPIRED and never runs."""
    record = trigger.store.get_run(run_id)
    if record is None or record.get("started"):
        return False  # only runs that never started can expire (a long retry is QUEUED too)
    ttl = float(record.get("ttl") or 0)
    error = TaskRunError(
        "TTL_EXPIRED", f"Run expired because the TTL ({format_duration(ttl)}) was reached"
    )
    stamp = now_ms()
    result = trigger.store.transition(
        run_id,
        stamp,
        allowed="QUEUED",
        status=RunStatus.EXPIRED.value,
        remove_timers=[f"pub|{run_id}", f"ttl|{run_id}", f"retry|{run_id}"],
        fields={"expired": str(stamp), "error": dumps(error.to_dict())},
    )
    if result.ok:
        notify_waiters(trigger, run_id)
        concurrency.release(trigger, result.record)  # it may have waited for a slot
        if record.get("idem_key"):
            # Only while this run still owns it: a reset may have handed it to a new run.
            trigger.store.release_idempotency_key(
                record["task"], record["idem_key"], run_id, clear_record=False
            )
    return result.ok
