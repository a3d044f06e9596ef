"""The executing attempt's private state, reachable from anywhere inside the run.

``context.current()`` is the public view (``Context``); ``RunState`` adds what the engine
needs to trigger children and record durable operations (depth, root, lease token).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from ..context import Context


@dataclass
class RunState:
    run_id: str
    task_id: str
    root_id: str
    depth: int
    attempt: int
    token: str
    is_test: bool
    ctx: Context
    record: dict[str, str]
    watch: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


_state: ContextVar[RunState | None] = ContextVar("celery_trigger_run_state", default=None)


def current_state() -> RunState | None:
    return _state.get()


def set_state(state: RunState | None) -> Any:
    return _state.set(state)


def reset_state(token: Any) -> None:
    _state.reset(token)
