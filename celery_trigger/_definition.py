"""The public task object: ``task()``/``schema_task()`` and ``TaskDefinition``.

``TaskDefinition`` is the engine's ``TaskSpec`` (``_engine/registry.py``: run function,
options, hooks, payload parsing) plus the methods a user calls on a task: ``trigger``,
``batch_trigger``, ``*_and_wait`` and a direct call. Those validate and delegate to
``_handles`` (the public handles) and the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from . import _handles, _on_commit
from ._engine.contexts import run_inline
from ._engine.registry import (
    HOOK_NAMES,
    GlobalHooks,
    TaskSpec,
    _lock,
    _registry,
    all_definitions,
    get,
    global_hooks,
    on_register,
    register,
    remove_listener,
)

if TYPE_CHECKING:
    from .result import BatchHandle, BatchResult, Result, RunHandle

P = TypeVar("P")
O = TypeVar("O")  # noqa: E741 - the output type, named as in API.md's Task[P, O]

__all__ = [
    "HOOK_NAMES",
    "GlobalHooks",
    "TaskDefinition",
    "TaskSpec",
    "_lock",
    "_registry",
    "all_definitions",
    "get",
    "global_hooks",
    "on_register",
    "register",
    "remove_listener",
    "schema_task",
    "task",
]


class TaskDefinition(TaskSpec, Generic[P, O]):
    """A task: its run function, options and hooks. Returned by ``@ct.task(...)``.

    Example::

        @ct.task(id="hello")
        def hello(payload: dict) -> str:
            return f"hi {payload['name']}"

        handle = hello.trigger({"name": "Ada"})
    """

    # triggering (delegates to _handles) -----------------------------------------------
    def trigger(self, payload: P, **options: Any) -> RunHandle:
        """Start a run. Example: ``handle = my_task.trigger({"x": 1}, delay="10m", tags=["a"])``."""
        return _handles.trigger(self.id, payload, options, definition=self)

    def trigger_on_commit(self, payload: P, **options: Any) -> None:
        """Trigger once the surrounding database transaction commits (Django: see
        ``celery_trigger_django``). Example: ``order_placed.trigger_on_commit({"id": 7})``."""
        _on_commit.trigger_on_commit(self.id, payload, options, definition=self)

    def batch_trigger(
        self, items: Sequence[Any], *, idempotency_key: Any = None, idempotency_key_ttl: Any = None
    ) -> BatchHandle:
        """Start up to 1,000 runs at once. Example: ``my_task.batch_trigger([{"payload": 1}])``.

        ``idempotency_key`` makes the batch idempotent and gives each item without a key of
        its own a derived one; ``idempotency_key_ttl`` is the items' default key TTL."""
        return _handles.batch_trigger(
            [(self.id, self, item) for item in _items(items)],
            _batch_options(idempotency_key, idempotency_key_ttl),
        )

    def trigger_and_wait(self, payload: P, **options: Any) -> Result[O]:
        """Start a child run and wait for its result (inside a run only)."""
        return _handles.trigger_and_wait(self.id, payload, options, definition=self)

    def batch_trigger_and_wait(
        self, items: Sequence[Any], *, idempotency_key: Any = None, idempotency_key_ttl: Any = None
    ) -> BatchResult[O]:
        """Start child runs and wait for all of them (inside a run only)."""
        return _handles.batch_trigger_and_wait(  # type: ignore[no-any-return]
            [(self.id, self, item) for item in _items(items)],
            _batch_options(idempotency_key, idempotency_key_ttl),
        )

    # direct call: run inline, like calling a Celery task object ---------------------------
    def __call__(self, payload: P) -> O:
        return run_inline(self, payload)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<celery_trigger task {self.id!r}>"


def _batch_options(key: Any, ttl: Any) -> dict[str, Any]:
    """Batch-level options as ``_handles.batch_trigger`` takes them (unset ones left out)."""
    return {
        k: v for k, v in (("idempotency_key", key), ("idempotency_key_ttl", ttl)) if v is not None
    }


def _items(items: Sequence[Any]) -> list[Any]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise TypeError("batch items must be a list")
    return list(items)


def task(
    *,
    id: str,
    run: Callable[..., Any] | None = None,
    retry: Any = None,
    queue: Any = None,
    machine: Any = None,
    max_duration: Any = None,
    ttl: Any = None,
    description: str | None = None,
    catch_error: Any = None,
    handle_error: Any = None,
    middleware: Any = None,
    init: Any = None,
    cleanup: Any = None,
    on_start: Any = None,
    on_start_attempt: Any = None,
    on_success: Any = None,
    on_failure: Any = None,
    on_complete: Any = None,
    on_wait: Any = None,
    on_resume: Any = None,
    on_cancel: Any = None,
    schema: Any = None,
    rate_limit: str | float | None = None,
    soft_time_limit: float | None = None,
    time_limit: float | None = None,
    acks_late: bool | None = None,
    bind: bool | None = None,
    serializer: str | None = None,
) -> Any:
    """Define a task; use as a decorator or pass ``run=``.

    Celery's own task options pass through to the Celery task (``task.celery_task``):
    ``rate_limit``, ``soft_time_limit``, ``time_limit``, ``acks_late``. ``bind=True`` means
    what it means in Celery, through the run's context: the function takes ``ctx``.
    ``serializer`` can only be ``"json"`` (payloads and outputs are stored as JSON).

    Example::

        @ct.task(id="process-data", retry=ct.RetryOptions(max_attempts=5))
        def process_data(payload: dict, ctx: ct.Context) -> dict:
            return {"n": len(payload["data"])}
    """
    hooks = {
        "catch_error": catch_error or handle_error,
        "middleware": middleware,
        "init": init,
        "cleanup": cleanup,
        "on_start": on_start,
        "on_start_attempt": on_start_attempt,
        "on_success": on_success,
        "on_failure": on_failure,
        "on_complete": on_complete,
        "on_wait": on_wait,
        "on_resume": on_resume,
        "on_cancel": on_cancel,
    }

    celery_options = celery_task_options(
        rate_limit=rate_limit,
        soft_time_limit=soft_time_limit,
        time_limit=time_limit,
        acks_late=acks_late,
        serializer=serializer,
    )

    def build(fn: Callable[..., Any]) -> TaskDefinition[Any, Any]:
        if bind and not _takes_ctx(fn):
            raise TypeError(
                f"task {id!r}: bind=True gives the run its context: define it as "
                "def run(payload, ctx) (ctx.run.id, ctx.attempt.number, ... stand for "
                "Celery's self.request)"
            )
        defn: TaskDefinition[Any, Any] = TaskDefinition(
            id=id,
            run=fn,
            retry=retry,
            queue=queue,
            machine=machine,
            max_duration=max_duration,
            ttl=ttl,
            description=description,
            schema=schema,
            hooks=hooks,
            celery_options=celery_options,
        )
        register(defn)
        return defn

    if run is not None:
        return build(run)
    return build


def celery_task_options(
    *,
    rate_limit: Any = None,
    soft_time_limit: Any = None,
    time_limit: Any = None,
    acks_late: Any = None,
    serializer: Any = None,
) -> dict[str, Any]:
    """Validate the Celery task options ``@ct.task`` accepts; return those given."""
    if serializer not in (None, "json"):
        raise ValueError(
            f"serializer={serializer!r}: celery-trigger tasks are JSON only (the payload and "
            "the output are stored as JSON in the run record); use JSON-compatible values"
        )
    for name, value in (("soft_time_limit", soft_time_limit), ("time_limit", time_limit)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
        ):
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    if acks_late is not None and not isinstance(acks_late, bool):
        raise TypeError("acks_late must be True or False")
    if rate_limit is not None and not isinstance(rate_limit, (str, int, float)):
        raise TypeError("rate_limit must be a Celery rate like '10/m' or a number per second")
    given = {
        "rate_limit": rate_limit,
        "soft_time_limit": soft_time_limit,
        "time_limit": time_limit,
        "acks_late": acks_late,
    }
    return {k: v for k, v in given.items() if v is not None}


def _takes_ctx(fn: Callable[..., Any]) -> bool:
    return TaskSpec.accepts_ctx(fn)


def schema_task(
    *, id: str, schema: Any, run: Callable[..., Any] | None = None, **options: Any
) -> Any:
    """Define a task whose payload is validated by ``schema`` (a pydantic model class or a
    parser callable) at trigger time and again before each attempt.

    Example::

        class User(pydantic.BaseModel):
            name: str = "John"
            age: int

        @ct.schema_task(id="greet", schema=User)
        def greet(user: User) -> str:
            return user.name
    """
    if schema is None or not callable(schema):
        raise TypeError("schema must be a pydantic model class or a callable parser")
    return task(id=id, run=run, schema=schema, **options)


def run_coroutine(coro: Any) -> Any:
    """Run a coroutine to completion from synchronous code outside a worker."""
    return asyncio.run(coro)
