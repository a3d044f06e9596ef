"""A worker's start: store its task definitions and queues, release the runs that waited for
them (PENDING_VERSION), write its declarative schedules (SEMANTICS §10.1, D-18).

Each stored definition carries ``live_until`` (ms): the worker's presence service
(``presence.py``) renews it while the worker runs, so "a live worker serves this task" is a
stored fact with an expiry, not a guess from a definition written once long ago."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from .._serialization import dumps
from .._vocab import RunStatus
from . import concurrency, registry
from .clock import now_ms
from .dispatch import publish_record
from .engine import Engine
from .schedules import is_scheduled, sync_declarative
from .versions import live_defs, waits_for_version

#: Most pending runs of one task released per worker start.
PENDING_BATCH = 1000
#: How often a worker renews the liveness of the tasks it serves (s), and how long a renewal
#: lasts: a worker that died stops counting as live after LIVE_FOR_S.
HEARTBEAT_S = 10.0
LIVE_FOR_S = 3 * HEARTBEAT_S


def served_specs(served: Collection[str] | None) -> list[registry.TaskSpec]:
    """The definitions this worker serves (``served``: its app's task names; None = all)."""
    return [s for s in registry.all_definitions() if served is None or s.id in served]


def task_defs(specs: Iterable[registry.TaskSpec], live_until: int) -> dict[str, str]:
    """The stored form of ``specs`` (what other processes know of a task)."""
    return {
        spec.id: dumps(
            {
                "queue": spec.queue.name if spec.queue else None,
                "celery_queue": spec.queue.celery_queue if spec.queue else None,
                "retry": spec.retry.to_dict() if spec.retry else None,
                "machine": spec.machine,
                "max_duration": spec.max_duration,
                "ttl": spec.ttl,
                "ttl_given": spec.ttl_given,
                "scheduled": is_scheduled(spec.id),
                "live_until": live_until,
            }
        )
        for spec in specs
    }


def sync_definitions(
    engine: Engine, served: Collection[str] | None = None, version: str | None = None
) -> None:
    """Store this worker's definitions (live for ``LIVE_FOR_S``, also at ``version`` when
    it serves one, D-21) and queues; release runs that waited for them; write its
    declarative schedules."""
    specs = served_specs(served)
    for spec in specs:
        if spec.queue is not None:
            # a changed limit admits the runs that now fit (DESIGN §6)
            concurrency.define_queue(engine, spec.queue.name, spec.queue.concurrency_limit)
    live_until = now_ms() + int(LIVE_FOR_S * 1000)
    defs = task_defs(specs, live_until)
    engine.store.put_task_defs({**defs, **live_defs(defs, version, live_until)})
    sync_declarative(engine)
    for task_id in defs:
        release_pending(engine, task_id)


def release_pending(engine: Engine, task_id: str) -> None:
    """Queue the runs of ``task_id`` that waited for a worker knowing it (and their queue,
    and their version when pinned to one: D-21)."""
    known_queues = {d.queue.name for d in registry.all_definitions() if d.queue is not None}
    default = f"task/{task_id}"
    for run_id in engine.store.pending_runs(task_id, PENDING_BATCH):
        record = engine.store.get_run(run_id)
        if record is not None and waits_for_version(engine, task_id, record, now_ms()):
            continue  # still waiting for a live worker serving its version
        queue = (record or {}).get("queue", "")
        if (
            queue
            and queue != default
            and queue not in known_queues
            and engine.store.get_queue(queue) is None
        ):
            continue  # still waiting for a worker that defines its queue
        # A run triggered before any worker knew its task got the default queue: it
        # belongs in the queue its task's code names (with that queue's limit, §6).
        code = registry.get(task_id)
        own = code.queue.name if code is not None and code.queue is not None else queue
        result = engine.store.transition(
            run_id,
            now_ms(),
            allowed=RunStatus.PENDING_VERSION.value,
            status=RunStatus.QUEUED.value,
            pending_task=task_id,
            fields={"queue": own} if queue == default and own != queue else None,
        )
        if result.ok and result.record is not None:
            publish_record(engine, result.record)
