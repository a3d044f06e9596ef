"""The executing attempt's private state, reachable from anywhere inside the run.

``context.current()`` is the public view (``Context``); ``RunState`` adds what the engine
needs to trigger children, record durable operations (depth, root, lease token, journal)
and account for usage. One ``RunState`` per attempt; the attempt flow creates it at claim.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..context import Context
from .watchdog import Watch


class MetadataBuffer(Protocol):
    """The run's buffered metadata writes (``metadata.RunMetadata``)."""

    run_id: str

    def flush(self) -> None: ...


@dataclass
class Journal:
    """The attempt's journal as loaded at claim time plus the replay cursor."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    replay_len: int = 0
    pos: int = 0
    wait_active: bool = False
    parked: bool = False
    concurrent: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def replaying(self) -> bool:
        return self.pos < self.replay_len


@dataclass
class Totals:
    """Compute used by the run's earlier attempts and this one so far (usage, cost)."""

    duration_ms: int = 0
    cost: float = 0.0


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
    watch: Watch | None = None
    journal: Journal = field(default_factory=Journal)
    #: the parsed payload (hooks get it)
    payload: Any = None
    totals: Totals = field(default_factory=Totals)
    #: monotonic time the attempt (or its resumed part) started
    started_mono: float | None = None
    #: compute time of this attempt before it parked (a resumed attempt)
    attempt_ms_before: int = 0
    #: a resumed attempt: init and start hooks already ran
    resumed: bool = False
    #: DEVELOPMENT without retries: failures are final
    retries_off: bool = False
    #: the run's metadata buffer, created on first use (``metadata.py``)
    metadata: MetadataBuffer | None = None
    #: per (target, key) sequence of stream chunks written (``streams.py``)
    stream_seq: dict[tuple[str, str], int] = field(default_factory=dict)


_state: ContextVar[RunState | None] = ContextVar("celery_trigger_run_state", default=None)


def current_state() -> RunState | None:
    return _state.get()


def set_state(state: RunState | None) -> Token[RunState | None]:
    return _state.set(state)


def reset_state(token: Token[RunState | None]) -> None:
    _state.reset(token)
