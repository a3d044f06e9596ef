"""Batches: validate every item, create all runs in one store call, publish them; read a
batch's record back.

All or nothing: an invalid item raises ``BatchTriggerError`` before any run is written.
Inside a run, batches are journaled with deterministic child ids (``journal.batch_in_run``).
An entry is ``(task id, its TaskSpec or None, item)``; an item is a ``BatchItem`` or a dict
``{"payload": ..., "options": {...}}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .._serialization import dumps, loads
from .._store.base import NewBatch
from .._vocab import RunStatus
from ..errors import BatchTriggerError, PayloadValidationError, TriggerError
from ..options import BatchItem
from ..result import ms_to_dt
from . import batch_keys
from .clock import new_batch_id, now_ms
from .dispatch import create_and_publish
from .engine import Engine, current
from .journal import batch_in_run
from .prepare import Prepared, known_queue_names, prepare
from .registry import TaskSpec
from .state import current_state
from .waits import batch_trigger_and_wait as wait_for_batch

#: Most items one batch may have.
MAX_BATCH_ITEMS = 1000
#: ``(task id, its code or None, item)``
Entry = tuple[str, TaskSpec | None, Any]


def _item_parts(item: Any) -> tuple[Any, dict[str, Any]]:
    if isinstance(item, BatchItem):
        return item.payload, dict(item.options)
    if isinstance(item, Mapping):
        unknown = set(item) - {"payload", "options", "id", "task"}
        if unknown:
            raise ValueError(f"unknown batch item key(s): {', '.join(sorted(unknown))}")
        options = item.get("options") or {}
        if not isinstance(options, Mapping):
            raise TypeError("batch item options must be a dict")
        return item.get("payload"), dict(options)
    raise TypeError(
        "batch items must be dicts like {'payload': ..., 'options': {...}} "
        "or BatchItem(payload, **options)"
    )


def create_batch(
    engine: Engine,
    entries: Sequence[Entry],
    run_ids: Sequence[str] | None = None,
    bkey: batch_keys.BatchKey | None = None,
) -> tuple[str, list[str], bool]:
    """Validate every item, then create all runs in one store call and publish them.

    Returns ``(batch id, run ids, cached)``: a batch key seen in the last 24 hours returns
    the batch created with it, and nothing is created (§5.3)."""
    count = len(entries)
    if count == 0 or count > MAX_BATCH_ITEMS:
        raise BatchTriggerError(
            f"a batch must have between 1 and {MAX_BATCH_ITEMS} items, got {count}",
            phase="create",
            item_count=count,
        )
    batch_id = new_batch_id() if run_ids is None else f"batch_{run_ids[0][4:]}"
    stamp = now_ms()
    known = known_queue_names()
    prepared: list[Prepared] = []
    for index, (task_id, defn, item) in enumerate(entries):
        payload, options = _item_parts(item)
        try:
            options = batch_keys.item_options(bkey, options, index)
            one = prepare(
                engine,
                task_id,
                payload,
                options,
                spec=defn,
                now=stamp,
                batch_id=batch_id,
                known_queues=known,
                run_id=run_ids[index] if run_ids is not None else None,
            )
        except (TypeError, ValueError, PayloadValidationError) as exc:
            raise BatchTriggerError(
                f"batch item {index} is invalid: {exc}", phase="create", item_count=count, cause=exc
            ) from exc
        prepared.append(one)
    hit = batch_keys.cached_batch(engine.store, bkey)
    if hit is not None:
        return hit[0], hit[1], True
    record = {
        "id": batch_id,
        "run_count": str(count),
        "created": str(stamp),
        "status": RunStatus.COMPLETED.value,
        **batch_keys.fields(bkey),
    }
    # the batch record is written in the same transaction as its runs (NewBatch)
    results = create_and_publish(engine, prepared, NewBatch(batch_id, record))
    created = [run_id for run_id, _ in results]
    if any(r != p.new.run_id for r, p in zip(created, prepared, strict=True)):
        # the store named the keys' owners; a failed owner replaced since is named here
        engine.store.put_batch(batch_id, {"runs": dumps(created)})
    winner = batch_keys.claim(engine.store, bkey, batch_id)
    if winner is not None:  # a concurrent repeat won; its items are ours (derived keys)
        return winner, created, True
    return batch_id, created, False


def _target(entries: Sequence[Entry]) -> str:
    return ",".join(dict.fromkeys(task_id for task_id, _, _ in entries))


def batch_trigger(
    entries: Sequence[Entry], options: Mapping[str, Any] | None = None
) -> tuple[str, list[str], bool]:
    """Create up to 1,000 runs in one store call and publish them (all or nothing).
    Returns ``(batch id, run ids, cached)``."""
    engine = current()
    bkey = batch_keys.resolve(options)
    if current_state() is not None:
        return batch_in_run(
            _target(entries), len(entries), lambda ids: create_batch(engine, entries, ids, bkey)
        )
    return create_batch(engine, entries, None, bkey)


def batch_trigger_and_wait(
    entries: Sequence[Entry], options: Mapping[str, Any] | None = None
) -> Any:
    """Trigger a batch and park until every run is final; returns a ``BatchResult``.

    A batch key already used in this run re-attaches to that batch and its runs (D-16)."""
    if current_state() is None:
        raise RuntimeError("batch_trigger_and_wait can only be used from inside a task run")
    engine = current()
    bkey = batch_keys.resolve(options)
    return wait_for_batch(
        _target(entries), len(entries), lambda ids: create_batch(engine, entries, ids, bkey)
    )


def retrieve(engine: Engine, batch_id: str) -> dict[str, Any]:
    """The batch record's public view; ``TriggerError`` for an unknown id."""
    record = engine.store.get_batch(batch_id)
    if record is None:
        raise TriggerError(f"no batch with id {batch_id!r}")
    return {
        "id": record["id"],
        "status": record.get("status", RunStatus.COMPLETED.value),
        "run_count": int(record.get("run_count") or 0),
        "runs": loads(record.get("runs")),
        "created_at": ms_to_dt(record.get("created")),
        "idempotency_key": record.get("idem") or None,
    }
