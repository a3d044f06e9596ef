"""The run context (``ctx``) handed to run functions and hooks, and ``current()``.

A ``Context`` is fixed for the whole attempt (SEMANTICS §1.8): it is built once when the
attempt starts and not refreshed while it runs. ``current()`` returns it from anywhere inside
the run (a contextvar, so threads and asyncio tasks started by the run see it too when they
copy the context).
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class TaskInfo:
    id: str
    file_path: str = ""


@dataclass(frozen=True)
class RunInfo:
    id: str
    tags: tuple[str, ...] = ()
    is_test: bool = False
    is_replay: bool = False
    created_at: datetime | None = None
    started_at: datetime | None = None
    idempotency_key: str | None = None
    max_attempts: int | None = None
    max_duration: int | None = None
    priority: float | None = None
    parent_task_run_id: str | None = None
    root_task_run_id: str | None = None
    base_cost_in_cents: float = 0.0
    #: the version the run was triggered for (``trigger(..., version=)``), if any (D-21)
    version: str | None = None
    #: the region the run was triggered for (``trigger(..., region=)``), if any (D-21)
    region: str | None = None
    #: compute cost of the run's earlier attempts, when this attempt started (§13)
    cost_in_cents: float = 0.0
    #: compute time of the run's earlier attempts, when this attempt started (§13)
    duration_ms: int = 0


@dataclass(frozen=True)
class AttemptInfo:
    number: int
    started_at: datetime


@dataclass(frozen=True)
class QueueInfo:
    name: str
    id: str = ""


@dataclass(frozen=True)
class MachineInfo:
    name: str
    cpu: float
    memory: float
    cents_per_ms: float = 0.0

    @property
    def preset(self) -> str:
        """The seed's name for the preset (same as ``name``). Example: ``ctx.machine.preset``."""
        return self.name


@dataclass(frozen=True)
class EnvironmentInfo:
    type: str
    id: str = ""
    slug: str = ""


@dataclass(frozen=True)
class BatchInfo:
    id: str


class _Replay(Protocol):
    @property
    def replaying(self) -> bool: ...


@dataclass(frozen=True)
class Context:
    """What a run knows about itself. Example: ``ctx.run.id``, ``ctx.attempt.number``."""

    task: TaskInfo
    run: RunInfo
    attempt: AttemptInfo
    queue: QueueInfo
    machine: MachineInfo
    environment: EnvironmentInfo
    batch: BatchInfo | None = None
    project: str = field(default="")
    #: the attempt's journal (anything with a ``replaying`` flag), given at construction
    _journal: _Replay | None = field(default=None, repr=False, compare=False)

    @property
    def is_replaying(self) -> bool:
        """True while the run re-executes code before the point where it last parked."""
        journal = self._journal
        return bool(journal is not None and journal.replaying)


_current: ContextVar[Context | None] = ContextVar("celery_trigger_context", default=None)


def current() -> Context | None:
    """The context of the run executing in this thread or task, or ``None`` outside a run.

    Example: ``ctx = ct.context.current(); print(ctx.run.id if ctx else "not in a run")``.
    """
    return _current.get()


__all__ = [
    "AttemptInfo",
    "BatchInfo",
    "Context",
    "EnvironmentInfo",
    "MachineInfo",
    "QueueInfo",
    "RunInfo",
    "TaskInfo",
    "current",
]
