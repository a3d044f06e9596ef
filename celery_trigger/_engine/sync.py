"""A worker's start: store its task definitions and queues, release the runs that waited for
them (PENDING_VERSION), write its declarative schedules (SEMANTICS §10.1, D-18)."""

from __future__ import annotations

from .._serialization import dumps
from .._vocab import RunStatus
from . import concurrency, registry
from .clock import now_ms
from .dispatch import publish_record
from .engine import Engine
from .schedules import is_scheduled, sync_declarative

#: Most pending runs of one task released per worker start.
PENDING_BATCH = 1000


def sync_definitions(engine: Engine) -> None:
    """Store this worker's definitions and queues; release runs that waited for them;
    write its declarative schedules."""
    defs: dict[str, str] = {}
    for spec in registry.all_definitions():
        defs[spec.id] = dumps(
            {
                "queue": spec.queue.name if spec.queue else None,
                "retry": spec.retry.to_dict() if spec.retry else None,
                "machine": spec.machine,
                "max_duration": spec.max_duration,
                "ttl": spec.ttl,
                "ttl_given": spec.ttl_given,
                "scheduled": is_scheduled(spec.id),
            }
        )
        if spec.queue is not None:
            # a changed limit admits the runs that now fit (DESIGN §6)
            concurrency.define_queue(engine, spec.queue.name, spec.queue.concurrency_limit)
    engine.store.put_task_defs(defs)
    sync_declarative(engine)
    for task_id in defs:
        release_pending(engine, task_id)


def release_pending(engine: Engine, task_id: str) -> None:
    """Queue the runs of ``task_id`` that waited for a worker knowing it (and their queue)."""
    known_queues = {d.queue.name for d in registry.all_definitions() if d.queue is not None}
    default = f"task/{task_id}"
    for run_id in engine.store.pending_runs(task_id, PENDING_BATCH):
        record = engine.store.get_run(run_id)
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
