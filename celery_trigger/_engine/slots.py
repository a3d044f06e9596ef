"""Which (sub-)queue a run's concurrency slot belongs to (DESIGN §6): pure helpers shared by
dispatch (a new run joins its line at creation) and the attempt (the claim's scope).

Nothing here talks to the store or publishes; ``concurrency.py`` does.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from .._keys import Keys
from .._store.base import SlotScope
from . import registry
from .engine import Engine


def scope(engine: Engine, queue: str, ckey: str | None = None) -> SlotScope:
    """The slot scope of a (sub-)queue under this process's environment limit."""
    return SlotScope(queue, ckey or "", engine.settings.concurrency_limit)


def _default_queue(task_id: str) -> str:
    defn = registry.get(task_id)
    return defn.queue.name if defn is not None and defn.queue is not None else f"task/{task_id}"


def slot_header(fields: Mapping[str, str]) -> str | None:
    """The ``ct_slot`` message header of a run whose (sub-)queue is not its task's default
    (a concurrency key, another queue), so the claim addresses the right sub-queue at once."""
    queue, ckey = fields.get("queue", ""), fields.get("ckey", "")
    if not queue or (not ckey and queue == _default_queue(fields.get("task", ""))):
        return None
    return Keys.subqueue(queue, ckey)


def hint(engine: Engine, task_id: str, header: str | None = None) -> SlotScope:
    """The scope a delivered run of ``task_id`` most likely has: the message's ``ct_slot``
    header, else its task's default queue. (A wrong hint costs the claim a round trip.)"""
    if header:
        queue, ckey = Keys.split_subqueue(header)
        return scope(engine, queue, ckey)
    return scope(engine, _default_queue(task_id))


def join_scope(engine: Engine, fields: Mapping[str, str]) -> SlotScope | None:
    """The scope a new QUEUED run takes its place in line with at creation, when this
    process knows its queue has a limit (a dynamic queue, its task's own queue, or an
    environment limit); otherwise None and the run joins when a worker claims it."""
    queue = fields.get("queue", "")
    if not queue:
        return None
    if engine.settings.concurrency_limit is None and not fields.get("queue_limit"):
        defn = registry.get(fields.get("task", ""))
        own = defn.queue if defn is not None else None
        if own is None or own.name != queue or own.concurrency_limit is None:
            return None
    return scope(engine, queue, fields.get("ckey"))


def line_seq(fields: Mapping[str, str], index: int, count: int) -> str:
    """A run's place among runs queued in the same ms (0-999, a fraction of that ms in the
    line's order): a batch's item index, or the microseconds of a single trigger, so runs
    triggered one after another keep their order."""
    if count > 1:
        return str(min(index, 999))
    micros = (time.time() * 1000 - int(fields.get("queued_at") or 0)) * 1000
    return str(int(min(999.0, max(0.0, micros))))
