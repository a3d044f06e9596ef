"""Trigger by task id and register global hooks (``ct.tasks.*``).

Example::

    handle = ct.tasks.trigger("process-data", {"data": [1, 2]}, tags=["batch-7"])

    @ct.tasks.on_failure
    def alert(payload, *, ctx, error):
        notify(ctx.run.id, error)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

from . import _handles, _on_commit
from ._definition import _batch_options, global_hooks
from .result import BatchHandle, BatchResult, Result, RunHandle

F = TypeVar("F", bound=Callable[..., Any])


def trigger(task_id: str, payload: Any = None, **options: Any) -> RunHandle:
    """Start a run of ``task_id`` (the task need not be importable here)."""
    return _handles.trigger(task_id, payload, options)


def trigger_on_commit(task_id: str, payload: Any = None, **options: Any) -> None:
    """Trigger ``task_id`` once the surrounding database transaction commits; nothing on
    rollback. Example: ``ct.tasks.trigger_on_commit("send-email", {"to": user.email})``."""
    _on_commit.trigger_on_commit(task_id, payload, options)


def batch_trigger(
    task_id: str,
    items: Sequence[Any],
    *,
    idempotency_key: Any = None,
    idempotency_key_ttl: Any = None,
) -> BatchHandle:
    """Start up to 1,000 runs of ``task_id`` (``idempotency_key``: see ``Task.batch_trigger``)."""
    return _handles.batch_trigger(
        [(task_id, None, item) for item in items],
        _batch_options(idempotency_key, idempotency_key_ttl),
    )


def trigger_and_wait(task_id: str, payload: Any = None, **options: Any) -> Result[Any]:
    """Start a child run of ``task_id`` and wait for its result (inside a run only)."""
    return _handles.trigger_and_wait(task_id, payload, options)


def batch_trigger_and_wait(
    task_id: str,
    items: Sequence[Any],
    *,
    idempotency_key: Any = None,
    idempotency_key_ttl: Any = None,
) -> BatchResult[Any]:
    """Start child runs of ``task_id`` and wait for all (inside a run only)."""
    return _handles.batch_trigger_and_wait(  # type: ignore[no-any-return]
        [(task_id, None, item) for item in items],
        _batch_options(idempotency_key, idempotency_key_ttl),
    )


def _hook(kind: str) -> Callable[..., Any]:
    @overload
    def register(fn: F) -> F: ...

    @overload
    def register(fn: str, hook: F) -> F: ...

    def register(fn: Any, hook: Any = None) -> Any:
        if isinstance(fn, str):
            if not callable(hook):
                raise TypeError(f"tasks.{kind}(name, fn): fn must be callable")
            global_hooks.add(kind, hook, fn)
            return hook
        if not callable(fn):
            raise TypeError(f"tasks.{kind} takes a function")
        global_hooks.add(kind, fn)
        return fn

    register.__name__ = kind
    register.__doc__ = (
        f"Register a global ``{kind}`` hook for every task: ``(fn)`` or "
        "``(name, fn)``; a name registered again replaces the earlier hook."
    )
    return register


on_start = _hook("on_start")
on_start_attempt = _hook("on_start_attempt")
on_success = _hook("on_success")
on_failure = _hook("on_failure")
on_complete = _hook("on_complete")
on_wait = _hook("on_wait")
on_resume = _hook("on_resume")
on_cancel = _hook("on_cancel")
catch_error = _hook("catch_error")
handle_error = catch_error
middleware = _hook("middleware")
init = _hook("init")
cleanup = _hook("cleanup")
