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
from collections.abc import Mapping
from typing import Any

from ._engine import queue_admin
from ._engine.engine import current
from ._engine.queue_admin import TASK_QUEUE_PREFIX, QueueInfo
from .options import Queue, sanitize_queue_name

MAX_PER_PAGE = 100


def _name(queue: str | Queue | Mapping[str, Any]) -> str:
    """A queue name from a name, a ``Queue`` or ``{"type": "task"|"custom", "name": ...}``."""
    if isinstance(queue, Queue):
        return queue.name
    if isinstance(queue, Mapping):
        kind, name = queue.get("type", "custom"), queue.get("name")
        if kind not in ("task", "custom") or not isinstance(name, str) or not name:
            raise ValueError("queue must look like {'type': 'task' | 'custom', 'name': str}")
        return f"{TASK_QUEUE_PREFIX}{name}" if kind == "task" else sanitize_queue_name(name)
    if not isinstance(queue, str) or not queue:
        raise TypeError("queue must be a queue name, a Queue or {'type': ..., 'name': ...}")
    return queue if queue.startswith(TASK_QUEUE_PREFIX) else sanitize_queue_name(queue)


def retrieve(queue: str | Queue | Mapping[str, Any]) -> QueueInfo:
    """A queue's limit, pause flag and how many runs run and wait in it.

    Example: ``ct.queues.retrieve("emails").running`` or
    ``ct.queues.retrieve({"type": "task", "name": "send-email"})``.
    """
    return queue_admin.retrieve(current(), _name(queue))


def list(*, page: int = 1, per_page: int = 20) -> builtins.list[QueueInfo]:
    """One page of every known queue, by name.

    Example: ``[q.name for q in ct.queues.list(per_page=50)]``.
    """
    for label, value in (("page", page), ("per_page", per_page)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    if per_page > MAX_PER_PAGE:
        raise ValueError(f"per_page must be at most {MAX_PER_PAGE}, got {per_page}")
    return queue_admin.page(current(), page, per_page)


def pause(queue: str | Queue | Mapping[str, Any]) -> QueueInfo:
    """Stop starting runs of the queue; executing runs finish normally (QUEUE-9).

    Example: ``ct.queues.pause("emails")``.
    """
    return queue_admin.pause(current(), _name(queue))


def resume(queue: str | Queue | Mapping[str, Any]) -> QueueInfo:
    """Let a paused queue start its waiting runs again, oldest first.

    Example: ``ct.queues.resume("emails")``.
    """
    return queue_admin.resume(current(), _name(queue))


__all__ = ["QueueInfo", "list", "pause", "resume", "retrieve"]
