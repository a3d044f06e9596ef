"""Task definitions: ``task()``/``schema_task()``, the registry, global hooks, late binding.

A definition is created at import time and knows nothing of Celery until ``setup(app)``
binds every definition (past and future) to that app as a real Celery task named by the
task id. Task ids are unique: defining the same id twice in one process is an error unless
it is the same function re-imported.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .errors import PayloadValidationError
from .options import (
    Queue,
    RetryOptions,
    clamp_max_duration,
    coerce_queue,
    coerce_retry,
    resolve_machine,
    resolve_ttl,
)

if TYPE_CHECKING:
    from .result import BatchHandle, BatchResult, Result, RunHandle

P = TypeVar("P")
O = TypeVar("O")  # noqa: E741 - the output type, named as in API.md's Task[P, O]

HOOK_NAMES = (
    "init",
    "cleanup",
    "middleware",
    "on_start",
    "on_start_attempt",
    "on_success",
    "on_failure",
    "on_complete",
    "on_wait",
    "on_resume",
    "on_cancel",
    "catch_error",
)

_lock = threading.RLock()
_registry: dict[str, TaskDefinition[Any, Any]] = {}
_bind_listeners: list[Callable[[TaskDefinition[Any, Any]], None]] = []


@dataclass
class GlobalHooks:
    """Hooks registered with ``tasks.on_*``; a name registered again replaces the earlier hook."""

    hooks: dict[str, dict[str, Callable[..., Any]]] = field(
        default_factory=lambda: {name: {} for name in HOOK_NAMES}
    )

    def add(self, kind: str, fn: Callable[..., Any], name: str | None = None) -> None:
        key = name or _hook_id(fn)
        with _lock:
            self.hooks[kind][key] = fn

    def get(self, kind: str) -> list[Callable[..., Any]]:
        return list(self.hooks[kind].values())

    def clear(self) -> None:
        with _lock:
            for table in self.hooks.values():
                table.clear()


def _hook_id(fn: Callable[..., Any]) -> str:
    """The id of an unnamed global hook: its qualified name, or for a lambda its source text
    (SEMANTICS §1.5), so two different lambdas never replace each other."""
    qualname = getattr(fn, "__qualname__", None)
    if not qualname:
        return repr(fn)
    if qualname.endswith("<lambda>"):
        try:
            return inspect.getsource(fn).strip()
        except (OSError, TypeError):
            code = getattr(fn, "__code__", None)
            return f"{qualname}@{code.co_filename}:{code.co_firstlineno}" if code else repr(fn)
    return str(qualname)


global_hooks = GlobalHooks()


def _accepts_ctx(fn: Callable[..., Any]) -> bool:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [
        p
        for p in params
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "init"
    ]
    return (
        len(positional) >= 2
        or any(p.kind is p.VAR_POSITIONAL for p in params)
        or any(p.name == "ctx" for p in params)
    )


def _accepts_init(fn: Callable[..., Any]) -> bool:
    """A run function may take ``init`` (the merged init hook results) by keyword."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "init" and p.kind is not p.POSITIONAL_ONLY for p in params)


class TaskDefinition(Generic[P, O]):
    """A task: its run function, options and hooks. Returned by ``@ct.task(...)``.

    Example::

        @ct.task(id="hello")
        def hello(payload: dict) -> str:
            return f"hi {payload['name']}"

        handle = hello.trigger({"name": "Ada"})
    """

    def __init__(
        self,
        *,
        id: str,
        run: Callable[..., Any],
        retry: Any = None,
        queue: Any = None,
        machine: Any = None,
        max_duration: Any = None,
        ttl: Any = None,
        description: str | None = None,
        schema: Any = None,
        hooks: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(id, str) or not id.strip():
            raise ValueError("task id must be a non-empty string")
        if not callable(run):
            raise TypeError(f"task {id!r}: run must be callable")
        self.id = id
        self.fn = run
        self.description = description or (inspect.getdoc(run) or "").split("\n")[0]
        self.retry: RetryOptions | None = coerce_retry(retry)
        self.queue: Queue | None = coerce_queue(queue, default_name=f"task/{id}")
        self.machine = resolve_machine(machine)
        self.max_duration = clamp_max_duration(max_duration)
        self.ttl_given = ttl is not None
        self.ttl = resolve_ttl(ttl)
        self.schema = schema
        self.is_async = inspect.iscoroutinefunction(run)
        self.takes_ctx = _accepts_ctx(run)
        self.takes_init = _accepts_init(run)
        self.hooks: dict[str, Callable[..., Any]] = {}
        for name, fn in (hooks or {}).items():
            if fn is None:
                continue
            if name not in HOOK_NAMES:
                raise ValueError(f"task {id!r}: unknown hook {name!r}")
            if not callable(fn):
                raise TypeError(f"task {id!r}: {name} must be callable")
            self.hooks[name] = fn
        self.celery_task: Any = None
        self.__doc__ = run.__doc__
        self.__name__ = getattr(run, "__name__", id)
        self.__module__ = getattr(run, "__module__", __name__)
        self.__wrapped__ = run

    # payload validation ---------------------------------------------------------------
    def parse_payload(self, payload: Any) -> Any:
        """Run the schema (pydantic model class or parser callable); return its output."""
        if self.schema is None:
            return payload
        validate = getattr(self.schema, "model_validate", None)
        try:
            if validate is not None:
                return validate(payload)
            return self.schema(payload)
        except Exception as exc:  # the schema's own error type is arbitrary
            raise PayloadValidationError(
                f"Parsing payload with schema failed: {exc}", cause=exc
            ) from exc

    # triggering (delegates to _trigger) -----------------------------------------------
    def trigger(self, payload: P, **options: Any) -> RunHandle:
        """Start a run. Example: ``handle = my_task.trigger({"x": 1}, delay="10m", tags=["a"])``."""
        from . import _trigger

        return _trigger.trigger(self.id, payload, options, definition=self)

    def trigger_on_commit(self, payload: P, **options: Any) -> None:
        """Trigger once the surrounding database transaction commits (Django: see
        ``celery_trigger_django``). Example: ``order_placed.trigger_on_commit({"id": 7})``."""
        from . import _on_commit

        _on_commit.trigger_on_commit(self.id, payload, options, definition=self)

    def batch_trigger(
        self, items: Sequence[Any], *, idempotency_key: Any = None, idempotency_key_ttl: Any = None
    ) -> BatchHandle:
        """Start up to 1,000 runs at once. Example: ``my_task.batch_trigger([{"payload": 1}])``.

        ``idempotency_key`` makes the batch idempotent and gives each item without a key of
        its own a derived one; ``idempotency_key_ttl`` is the items' default key TTL."""
        from . import _batches

        return _batches.batch_trigger(
            [(self.id, self, item) for item in _items(items)],
            _batch_options(idempotency_key, idempotency_key_ttl),
        )

    def trigger_and_wait(self, payload: P, **options: Any) -> Result[O]:
        """Start a child run and wait for its result (inside a run only)."""
        from . import _trigger

        return _trigger.trigger_and_wait(  # type: ignore[no-any-return]
            self.id, payload, options, definition=self
        )

    def batch_trigger_and_wait(
        self, items: Sequence[Any], *, idempotency_key: Any = None, idempotency_key_ttl: Any = None
    ) -> BatchResult[O]:
        """Start child runs and wait for all of them (inside a run only)."""
        from . import _batches

        return _batches.batch_trigger_and_wait(  # type: ignore[no-any-return]
            [(self.id, self, item) for item in _items(items)],
            _batch_options(idempotency_key, idempotency_key_ttl),
        )

    # direct call: run inline, like calling a Celery task object ---------------------------
    def __call__(self, payload: P) -> O:
        from ._engine.contexts import run_inline

        return run_inline(self, payload)  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return f"<celery_trigger task {self.id!r}>"


def _batch_options(key: Any, ttl: Any) -> dict[str, Any]:
    """Batch-level options as ``_batches.batch_trigger`` takes them (unset ones left out)."""
    return {
        k: v for k, v in (("idempotency_key", key), ("idempotency_key_ttl", ttl)) if v is not None
    }


def _items(items: Sequence[Any]) -> list[Any]:
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise TypeError("batch items must be a list")
    return list(items)


def register(defn: TaskDefinition[Any, Any]) -> None:
    with _lock:
        existing = _registry.get(defn.id)
        if (
            existing is not None
            and existing.fn is not defn.fn
            and getattr(existing.fn, "__qualname__", None) != getattr(defn.fn, "__qualname__", 1)
        ):
            raise ValueError(
                f"a task with id {defn.id!r} is already defined "
                f"({existing.fn.__module__}.{existing.fn.__qualname__})"
            )
        _registry[defn.id] = defn
        listeners = list(_bind_listeners)
    for listener in listeners:
        listener(defn)


def get(task_id: str) -> TaskDefinition[Any, Any] | None:
    return _registry.get(task_id)


def all_definitions() -> list[TaskDefinition[Any, Any]]:
    with _lock:
        return list(_registry.values())


def on_register(listener: Callable[[TaskDefinition[Any, Any]], None]) -> None:
    """Call ``listener`` for every definition now and every one registered later."""
    with _lock:
        _bind_listeners.append(listener)
        existing = list(_registry.values())
    for defn in existing:
        listener(defn)


def remove_listener(listener: Callable[[TaskDefinition[Any, Any]], None]) -> None:
    with _lock:
        if listener in _bind_listeners:
            _bind_listeners.remove(listener)


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
) -> Any:
    """Define a task; use as a decorator or pass ``run=``.

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

    def build(fn: Callable[..., Any]) -> TaskDefinition[Any, Any]:
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
        )
        register(defn)
        return defn

    if run is not None:
        return build(run)
    return build


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
