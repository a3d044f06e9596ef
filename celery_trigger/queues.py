"""Queue management (SEMANTICS §6.1): list, retrieve, pause and resume queues.

Example::

    info = ct.queues.retrieve("emails")
    print(info.running, info.queued, info.concurrency_limit)
    ct.queues.pause("emails")     # executing runs finish; no new run of "emails" starts
    ct.queues.resume("emails")

A queue is known once code defines it (``ct.queue(...)`` on a task, stored when a worker
starts), a trigger creates it (``queue={"name": ..., "concurrency_limit": ...}``), or it is
the default queue ``task/<id>`` of a task defined in this process. ``running`` counts the
runs holding one of the queue's concurrency slots and ``queued`` the runs waiting for one;
both are tracked for queues with a limit (or a pause, or an environment-wide limit), so an
unlimited queue reports ``running=0`` and ``queued=0`` (its runs take no slots).
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from . import _definition
from ._engine import concurrency
from ._engine.engine import Engine, current
from .errors import QueueNotFoundError
from .options import Queue, sanitize_queue_name

MAX_PER_PAGE = 100


@dataclass(frozen=True)
class QueueInfo:
    """A queue's state: ``QueueInfo(name="emails", running=2, queued=5, ...)``."""

    id: str
    name: str
    type: str  # "task" (a task's own queue, ``task/<id>``) or "custom"
    running: int
    queued: int
    paused: bool
    concurrency_limit: int | None


def _name(queue: str | Queue | Mapping[str, Any]) -> str:
    """A queue name from a name, a ``Queue`` or ``{"type": "task"|"custom", "name": ...}``."""
    if isinstance(queue, Queue):
        return queue.name
    if isinstance(queue, Mapping):
        kind, name = queue.get("type", "custom"), queue.get("name")
        if kind not in ("task", "custom") or not isinstance(name, str) or not name:
            raise ValueError("queue must look like {'type': 'task' | 'custom', 'name': str}")
        return f"task/{name}" if kind == "task" else sanitize_queue_name(name)
    if not isinstance(queue, str) or not queue:
        raise TypeError("queue must be a queue name, a Queue or {'type': ..., 'name': ...}")
    return queue if queue.startswith("task/") else sanitize_queue_name(queue)


def _local_names() -> set[str]:
    return {
        d.queue.name if d.queue is not None else f"task/{d.id}"
        for d in _definition.all_definitions()
    }


def _info(engine: Engine, name: str, record: Mapping[str, str] | None) -> QueueInfo:
    running, queued = engine.store.queue_usage(name, int(time.time() * 1000))
    limit_text = (record or {}).get("concurrency_limit", "")
    limit = int(limit_text) if limit_text else None
    env = engine.settings.concurrency_limit
    if env is not None and (limit is None or limit > env):
        limit = env  # a queue never exceeds the environment's limit (QUEUE-8)
    return QueueInfo(
        id=name,
        name=name,
        type="task" if name.startswith("task/") else "custom",
        running=running,
        queued=queued,
        paused=(record or {}).get("paused") == "1",
        concurrency_limit=limit,
    )


def _known(engine: Engine, queue: str | Queue | Mapping[str, Any]) -> tuple[str, Any]:
    name = _name(queue)
    record = engine.store.get_queue(name)
    if record is None and name not in _local_names():
        raise QueueNotFoundError(f"no queue named {name!r}")
    return name, record


def retrieve(queue: str | Queue | Mapping[str, Any]) -> QueueInfo:
    """A queue's limit, pause flag and how many runs run and wait in it.

    Example: ``ct.queues.retrieve("emails").running`` or
    ``ct.queues.retrieve({"type": "task", "name": "send-email"})``.
    """
    engine = current()
    name, record = _known(engine, queue)
    return _info(engine, name, record)


def list(*, page: int = 1, per_page: int = 20) -> builtins.list[QueueInfo]:
    """One page of every known queue, by name.

    Example: ``[q.name for q in ct.queues.list(per_page=50)]``.
    """
    for label, value in (("page", page), ("per_page", per_page)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    if per_page > MAX_PER_PAGE:
        raise ValueError(f"per_page must be at most {MAX_PER_PAGE}, got {per_page}")
    engine = current()
    names = sorted(set(engine.store.queue_names()) | _local_names())
    chosen = names[(page - 1) * per_page : page * per_page]
    return [_info(engine, name, engine.store.get_queue(name)) for name in chosen]


def pause(queue: str | Queue | Mapping[str, Any]) -> QueueInfo:
    """Stop starting runs of the queue; executing runs finish normally (QUEUE-9).

    Example: ``ct.queues.pause("emails")``.
    """
    engine = current()
    name, _ = _known(engine, queue)
    engine.store.put_queue(name, {"paused": "1"})
    return _info(engine, name, engine.store.get_queue(name))


def resume(queue: str | Queue | Mapping[str, Any]) -> QueueInfo:
    """Let a paused queue start its waiting runs again, oldest first.

    Example: ``ct.queues.resume("emails")``.
    """
    engine = current()
    name, _ = _known(engine, queue)
    engine.store.put_queue(name, {"paused": ""})
    concurrency.pump_queue(engine, name)
    return _info(engine, name, engine.store.get_queue(name))
