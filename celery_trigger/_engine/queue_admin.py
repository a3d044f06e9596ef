"""Queue administration (SEMANTICS §6.1): which queues exist, their usage, pause and resume.

A queue is known when the store has its record (a worker stored its definition, or a trigger
created it) or when a task of this process has it as its queue (``task/<id>`` by default).

Invariants:
- a reported limit never exceeds the environment's limit (QUEUE-8);
- ``running``/``queued`` are the slot counts of the queue's sub-queues: an unlimited queue
  takes no slots, so it reports 0 and 0;
- pausing only flags the queue (executing runs finish; no new run starts, QUEUE-9); resuming
  clears the flag and admits the waiting runs at once, oldest first.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import QueueNotFoundError
from . import concurrency, registry
from .engine import Engine

#: The prefix of a task's own queue (``task/<task id>``).
TASK_QUEUE_PREFIX = "task/"
#: The stored ``paused`` flag of a paused queue (an empty string when not paused).
PAUSED_FLAG = "1"


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


def local_names() -> set[str]:
    """The queues of the tasks defined in this process."""
    return {
        d.queue.name if d.queue is not None else f"{TASK_QUEUE_PREFIX}{d.id}"
        for d in registry.all_definitions()
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
        type="task" if name.startswith(TASK_QUEUE_PREFIX) else "custom",
        running=running,
        queued=queued,
        paused=(record or {}).get("paused") == PAUSED_FLAG,
        concurrency_limit=limit,
    )


def _known(engine: Engine, name: str) -> Mapping[str, str] | None:
    record = engine.store.get_queue(name)
    if record is None and name not in local_names():
        raise QueueNotFoundError(f"no queue named {name!r}")
    return record


def retrieve(engine: Engine, name: str) -> QueueInfo:
    """The queue's state; ``QueueNotFoundError`` for a queue nobody defined."""
    return _info(engine, name, _known(engine, name))


def page(engine: Engine, page: int, per_page: int) -> list[QueueInfo]:
    """Page ``page`` (from 1) of every known queue, by name."""
    names = sorted(set(engine.store.queue_names()) | local_names())
    chosen = names[(page - 1) * per_page : page * per_page]
    return [_info(engine, name, engine.store.get_queue(name)) for name in chosen]


def pause(engine: Engine, name: str) -> QueueInfo:
    """Flag the queue paused: no new run of it starts (QUEUE-9)."""
    _known(engine, name)
    engine.store.put_queue(name, {"paused": PAUSED_FLAG})
    return _info(engine, name, engine.store.get_queue(name))


def resume(engine: Engine, name: str) -> QueueInfo:
    """Clear the pause flag and admit the queue's waiting runs."""
    _known(engine, name)
    engine.store.put_queue(name, {"paused": ""})
    concurrency.pump_queue(engine, name)
    return _info(engine, name, engine.store.get_queue(name))
