"""The run phase of an attempt: middleware, init and start hooks, the run function, then
the success or failure hooks and the retry decision (SEMANTICS §1.3, §1.5).

``run_attempt`` never raises for user errors: it returns an ``Outcome``. Control flow
(``Park`` through ``journal.call_parkable``, the watchdog's interrupts, a lost lease) passes
through every hook untouched, since it is all ``BaseException``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from ..._serialization import loads
from ..._vocab import RunStatus
from ...context import Context, _current
from ...errors import (
    AbortTaskRunError,
    ConcurrentWaitError,
    NonDeterminismError,
    PayloadValidationError,
)
from ...options import RetryOptions
from .. import hooks as hk
from ..aio import run_coroutine
from ..backoff import next_retry_delay_ms
from ..engine import Engine
from ..journal import LeaseLost, call_parkable
from ..registry import TaskSpec, global_hooks
from ..state import RunState, reset_state, set_state
from ..watchdog import MaxDurationExceeded
from .outcome import DropDelivery, Outcome, error_record, failure


def retry_policy(record: Mapping[str, str]) -> RetryOptions | None:
    text = record.get("retry")
    if not text:
        return None
    data = loads(text)
    data["max_attempts"] = int(record.get("max_attempts") or data.get("max_attempts") or 1)
    return RetryOptions(**data)


def run_attempt(engine: Engine, defn: TaskSpec | None, state: RunState) -> Outcome:
    """One attempt with its hooks; never raises for user errors (returns an Outcome)."""
    record, ctx = state.record, state.ctx
    if defn is None:
        return failure(
            "COULD_NOT_FIND_TASK",
            f"no task with id {state.task_id!r} is defined in this worker",
            RunStatus.SYSTEM_FAILURE,
        )
    try:
        payload = defn.parse_payload(loads(record.get("payload")))
    except PayloadValidationError as exc:
        return failure("TASK_INPUT_ERROR", f"TaskPayloadParsedError: {exc}")
    ctx_token = _current.set(ctx)
    state_token = set_state(state)
    state.payload = payload
    try:
        outcome, reason = call_parkable(lambda: _with_middleware(engine, defn, state, payload))
        return outcome if outcome is not None else Outcome("park", reason=reason or "")
    except LeaseLost:
        raise DropDelivery("lease lost") from None
    except MaxDurationExceeded:
        return failure(
            "MAX_DURATION_EXCEEDED",
            f"Run exceeded maximum compute time (maxDuration) of "
            f"{record.get('max_duration')} seconds",
            RunStatus.TIMED_OUT,
        )
    finally:
        reset_state(state_token)
        _current.reset(ctx_token)


def _with_middleware(engine: Engine, defn: TaskSpec, state: RunState, payload: Any) -> Outcome:
    common: dict[str, Any] = {"payload": payload, "ctx": state.ctx, "task": defn}
    # A resumed attempt re-enters the run function only: middleware, init and the start
    # hooks ran when the attempt began (SEMANTICS §1.5, D-17).
    middleware = [] if state.resumed else hk.chain("middleware", defn)
    box: dict[str, Outcome] = {}

    def inner() -> None:
        box["outcome"] = _run_with_hooks(engine, defn, state, payload, common)

    try:
        _run_middleware(middleware, common, inner)
    except Exception as exc:  # run errors become Outcomes in inner(): this is middleware
        return _middleware_failure(state, exc)
    return box.get("outcome", Outcome("success"))


def _run_middleware(
    chain: list[Callable[..., Any]], common: dict[str, Any], inner: Callable[[], None]
) -> None:
    def step(index: int) -> None:
        if index == len(chain):
            inner()
            return
        hk.call(chain[index], **common, next=lambda: step(index + 1))

    step(0)


def _middleware_failure(state: RunState, exc: BaseException) -> Outcome:
    """Middleware errors skip catch_error/on_failure and retry under the policy (§1.5)."""
    policy = retry_policy(state.record)
    delay = next_retry_delay_ms(policy, state.attempt) if policy else None
    if state.retries_off:
        delay = None
    record = error_record(exc, "TASK_MIDDLEWARE_ERROR")
    if delay is None:
        return Outcome("fail", error_record=record)
    return Outcome("retry", error_record=record, delay_ms=delay)


def _run_with_hooks(
    engine: Engine, defn: TaskSpec, state: RunState, payload: Any, common: dict[str, Any]
) -> Outcome:
    config = engine.config
    ctx = state.ctx
    try:
        init: dict[str, Any] = {}
        if not state.resumed:
            for fn in hk.chain("init", defn, [config.init] if config.init else None):
                result = hk.call(fn, **common)
                if isinstance(result, Mapping):
                    init.update(result)
        common["init"] = init
        if not state.resumed:
            if ctx.attempt.number == 1:
                hk.run_all(
                    hk.chain("on_start", defn, [config.on_start] if config.on_start else None),
                    swallow=False,
                    **common,
                )
            hk.run_all(hk.chain("on_start_attempt", defn), swallow=False, **common)
        output = call_run(defn, payload, ctx, init)
    except Exception as exc:
        return _on_error(engine, defn, state, exc, common)
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
        return _on_error(engine, defn, state, exc, common, cleanup_done=True)
    return Outcome("success", output=output)


def call_run(defn: TaskSpec, payload: Any, ctx: Context, init: dict[str, Any]) -> Any:
    """Call the run function (sync, or async on the process's event loop).

    A run function with an ``init`` parameter gets the merged init results as ``init=``.
    """
    args: tuple[Any, ...] = (payload, ctx) if defn.takes_ctx else (payload,)
    kwargs = {"init": init} if defn.takes_init else {}
    if defn.is_async:
        return run_coroutine(defn.fn(*args, **kwargs))
    return defn.fn(*args, **kwargs)


def _on_error(
    engine: Engine,
    defn: TaskSpec,
    state: RunState,
    exc: Exception,
    common: dict[str, Any],
    cleanup_done: bool = False,
) -> Outcome:
    """Decide retry or failure (§1.3) and run the failure hooks in order (§1.5)."""
    config = engine.config
    ctx = state.ctx
    policy = retry_policy(state.record)
    retries_off = state.retries_off
    error: BaseException = exc
    delay: float | None = None
    if isinstance(exc, ConcurrentWaitError) or state.journal.concurrent:
        if not cleanup_done:
            _cleanup_quietly(defn, common)
        return Outcome("fail", error=exc, status=RunStatus.SYSTEM_FAILURE)
    if not isinstance(exc, (AbortTaskRunError, NonDeterminismError)) and not retries_off:
        try:
            decision = _ask_catch_error(defn, state, exc, policy, common)
        except AbortTaskRunError as abort:
            # D-19: the seed's catch_error ends a run this way: FAILED, no retry, on_failure.
            decision = hk.CatchDecision(True, None, abort)
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


def _ask_catch_error(
    defn: TaskSpec,
    state: RunState,
    exc: Exception,
    policy: RetryOptions | None,
    common: dict[str, Any],
) -> hk.CatchDecision:
    """The task's own catch_error first, then the globals (§1.3), with the default delay."""
    default_delay = next_retry_delay_ms(policy, state.ctx.attempt.number) if policy else None
    now = datetime.now(timezone.utc)
    retry_at = None if default_delay is None else now + timedelta(milliseconds=default_delay)
    own = defn.hooks.get("catch_error")
    fns = ([own] if own else []) + global_hooks.get("catch_error")
    return hk.resolve_catch_error(
        fns,
        now,
        default_delay,
        error=exc,
        retry=policy,
        retry_delay_in_ms=default_delay,
        retry_at=retry_at,
        **common,
    )


def _cleanup_quietly(defn: TaskSpec, common: dict[str, Any]) -> None:
    hk.run_all(hk.chain("cleanup", defn), swallow=True, **common)
