"""Batches: validate every item, create all runs in one store call, publish them.

All or nothing: an invalid item raises ``BatchTriggerError`` before any run is written.
Inside a run, batches are journaled with deterministic child ids (``_durable``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._engine import batch_keys
from ._engine.state import current_state
from ._serialization import dumps
from ._setup import Trigger, current
from ._trigger import (
    MAX_BATCH_ITEMS,
    Prepared,
    _dynamic_queue,
    create_and_publish,
    known_queue_names,
    new_batch_id,
    now_ms,
    prepare,
)
from .errors import BatchTriggerError, PayloadValidationError
from .options import BatchItem
from .result import BatchHandle


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


def _create_batch(
    engine: Trigger,
    entries: Sequence[tuple[str, Any, Any]],
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
    known = known_queue_names(engine)
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
                defn=defn,
                now=stamp,
                batch_id=batch_id,
                known_queues=known,
                run_id=run_ids[index] if run_ids is not None else None,
            )
        except (TypeError, ValueError, PayloadValidationError) as exc:
            raise BatchTriggerError(
                f"batch item {index} is invalid: {exc}", phase="create", item_count=count, cause=exc
            ) from exc
        queue = _dynamic_queue(options)
        if queue is not None:
            one.new.fields["queue_limit"] = str(queue.concurrency_limit)
        prepared.append(one)
    hit = batch_keys.cached_batch(engine.store, bkey)
    if hit is not None:
        return hit[0], hit[1], True
    created = [run_id for run_id, _ in create_and_publish(engine, prepared)]
    winner = batch_keys.claim(engine.store, bkey, batch_id)
    if winner is not None:  # a concurrent repeat won; its items are ours (derived keys)
        return winner, created, True
    engine.store.put_batch(
        batch_id,
        {
            "id": batch_id,
            "runs": dumps(created),
            "run_count": str(count),
            "created": str(stamp),
            "status": "COMPLETED",
            **batch_keys.fields(bkey),
        },
    )
    return batch_id, created, False


def batch_trigger(
    entries: Sequence[tuple[str, Any, Any]], options: Mapping[str, Any] | None = None
) -> BatchHandle:
    """Create up to 1,000 runs in one store call and publish them (all or nothing)."""
    from . import _durable
    from .auth import batch_handle_token

    engine = current()
    bkey = batch_keys.resolve(options)
    if current_state() is not None:
        batch_id, run_ids, cached = _durable.batch_in_run(
            _batch_target(entries),
            len(entries),
            lambda ids: _create_batch(engine, entries, ids, bkey),
        )
    else:
        batch_id, run_ids, cached = _create_batch(engine, entries, None, bkey)
    return BatchHandle(
        batch_id=batch_id,
        run_count=len(run_ids),
        runs=run_ids,
        public_access_token=batch_handle_token(engine, batch_id),
        is_cached=cached,
    )


def _batch_target(entries: Sequence[tuple[str, Any, Any]]) -> str:
    return ",".join(dict.fromkeys(task_id for task_id, _, _ in entries))


def batch_trigger_and_wait(
    entries: Sequence[tuple[str, Any, Any]], options: Mapping[str, Any] | None = None
) -> Any:
    """Trigger a batch and park until every run is final; returns a ``BatchResult``.

    A batch key already used in this run re-attaches to that batch and its runs (D-16)."""
    from . import _durable

    if current_state() is None:
        raise RuntimeError("batch_trigger_and_wait can only be used from inside a task run")
    engine = current()
    bkey = batch_keys.resolve(options)
    return _durable.batch_trigger_and_wait(
        _batch_target(entries), len(entries), lambda ids: _create_batch(engine, entries, ids, bkey)
    )
