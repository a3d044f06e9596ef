"""The task registry: what the engine knows of each task, and the global hooks.

A ``TaskSpec`` is created at import time (by ``@ct.task``, through the public
``TaskDefinition`` subclass) and registered by id. Task ids are unique: defining the same id
twice in one process is an error unless it is the same function re-imported. Listeners
(the Celery layer) are told of every registration, past and future, so each definition is
bound to the app as a real Celery task.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import PayloadValidationError
from ..options import (
    Queue,
    RetryOptions,
    clamp_max_duration,
    coerce_queue,
    coerce_retry,
    resolve_machine,
    resolve_ttl,
)

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
_registry: dict[str, TaskSpec] = {}
_bind_listeners: list[Callable[[TaskSpec], None]] = []


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


class TaskSpec:
    """What the engine knows of a task: its run function, options and hooks.

    The public ``TaskDefinition`` (returned by ``@ct.task``) extends it with the trigger
    methods; the engine only ever sees this part.

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
        celery_options: Mapping[str, Any] | None = None,
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
        #: Celery task options given to ``@ct.task`` (rate_limit, time limits, acks_late),
        #: applied by the Celery layer when it binds the task
        self.celery_options: dict[str, Any] = dict(celery_options or {})
        self.celery_task: Any = None
        self.__doc__ = run.__doc__
        self.__name__ = getattr(run, "__name__", id)
        self.__module__ = getattr(run, "__module__", __name__)
        self.__wrapped__ = run

    @staticmethod
    def accepts_ctx(fn: Callable[..., Any]) -> bool:
        """Whether a run function takes the run's context (``ctx``)."""
        return _accepts_ctx(fn)

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


def register(defn: TaskSpec) -> None:
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


def get(task_id: str) -> TaskSpec | None:
    return _registry.get(task_id)


def all_definitions() -> list[TaskSpec]:
    with _lock:
        return list(_registry.values())


def on_register(listener: Callable[[TaskSpec], None]) -> None:
    """Call ``listener`` for every definition now and every one registered later."""
    with _lock:
        _bind_listeners.append(listener)
        existing = list(_registry.values())
    for defn in existing:
        listener(defn)


def remove_listener(listener: Callable[[TaskSpec], None]) -> None:
    with _lock:
        if listener in _bind_listeners:
            _bind_listeners.remove(listener)
