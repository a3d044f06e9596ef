"""Batches across tasks (``ct.batch.*``).

Example::

    handle = ct.batch.trigger([
        {"id": "send-email", "payload": {"to": "a@example.com"}},
        {"id": "send-sms", "payload": {"to": "+100"}, "options": {"delay": "1m"}},
    ])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from . import _handles
from ._definition import _batch_options
from ._engine import batches
from ._engine.engine import current
from .result import BatchHandle, BatchResult


def _by_id(items: Sequence[Mapping[str, Any]]) -> list[tuple[str, Any, Any]]:
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or not isinstance(item.get("id"), str):
            raise TypeError(f"batch item {index} needs an 'id' (the task id)")
        out.append((item["id"], None, {k: v for k, v in item.items() if k != "id"}))
    return out


def _by_task(items: Sequence[Mapping[str, Any]]) -> list[tuple[str, Any, Any]]:
    out = []
    for index, item in enumerate(items):
        task = item.get("task") if isinstance(item, Mapping) else None
        if task is None or not hasattr(task, "id"):
            raise TypeError(f"batch item {index} needs a 'task' (a task object)")
        out.append((task.id, task, {k: v for k, v in item.items() if k != "task"}))
    return out


def trigger(
    items: Sequence[Mapping[str, Any]],
    *,
    idempotency_key: Any = None,
    idempotency_key_ttl: Any = None,
) -> BatchHandle:
    """Start runs of several tasks by id in one batch (1 to 1,000 items)."""
    return _handles.batch_trigger(
        _by_id(items), _batch_options(idempotency_key, idempotency_key_ttl)
    )


def trigger_by_task(
    items: Sequence[Mapping[str, Any]],
    *,
    idempotency_key: Any = None,
    idempotency_key_ttl: Any = None,
) -> BatchHandle:
    """Start runs of several task objects in one batch (payloads validated by schema tasks)."""
    return _handles.batch_trigger(
        _by_task(items), _batch_options(idempotency_key, idempotency_key_ttl)
    )


def trigger_and_wait(
    items: Sequence[Mapping[str, Any]],
    *,
    idempotency_key: Any = None,
    idempotency_key_ttl: Any = None,
) -> BatchResult[Any]:
    """Like ``trigger`` and wait for every run (inside a run only)."""
    return _handles.batch_trigger_and_wait(  # type: ignore[no-any-return]
        _by_id(items),
        _batch_options(idempotency_key, idempotency_key_ttl),
    )


def trigger_by_task_and_wait(
    items: Sequence[Mapping[str, Any]],
    *,
    idempotency_key: Any = None,
    idempotency_key_ttl: Any = None,
) -> BatchResult[Any]:
    """Like ``trigger_by_task`` and wait for every run (inside a run only)."""
    return _handles.batch_trigger_and_wait(  # type: ignore[no-any-return]
        _by_task(items),
        _batch_options(idempotency_key, idempotency_key_ttl),
    )


def retrieve(batch_id: str) -> dict[str, Any]:
    """The batch record: ``{"id", "status", "run_count", "runs", "created_at",
    "idempotency_key"}`` (the batch key as given, or None)."""
    return batches.retrieve(current(), batch_id)
