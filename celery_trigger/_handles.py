"""Public handles of triggers: the engine creates runs and batches, this module wraps their
ids in ``RunHandle``/``BatchHandle`` with their public access tokens (``auth.py``).

Every public trigger entry point (``task.trigger``, ``tasks.trigger``, ``batch.*``) goes
through here, so a handle looks the same whichever way it was made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._engine import batches, triggering
from ._engine.batches import Entry
from ._engine.engine import current
from ._engine.registry import TaskSpec
from .auth import batch_handle_token, run_handle_token
from .result import BatchHandle, Result, RunHandle


def trigger(
    task_id: str, payload: Any, options: Mapping[str, Any], *, definition: TaskSpec | None = None
) -> RunHandle:
    """Create one run and publish it (journaled inside a run); its handle."""
    engine = current()
    run_id, cached = triggering.trigger(task_id, payload, options, definition)
    return RunHandle(
        id=run_id,
        is_cached=cached,
        task_identifier=task_id,
        token_factory=lambda: run_handle_token(engine, run_id),
    )


def trigger_and_wait(
    task_id: str, payload: Any, options: Mapping[str, Any], *, definition: TaskSpec | None = None
) -> Result[Any]:
    """Trigger a child run and park until it is final (inside a run only)."""
    return triggering.trigger_and_wait(task_id, payload, options, definition)


def batch_trigger(
    entries: Sequence[Entry], options: Mapping[str, Any] | None = None
) -> BatchHandle:
    """Create up to 1,000 runs at once (all or nothing); the batch's handle."""
    engine = current()
    batch_id, run_ids, cached = batches.batch_trigger(entries, options)
    return BatchHandle(
        batch_id=batch_id,
        run_count=len(run_ids),
        runs=run_ids,
        public_access_token=batch_handle_token(engine, batch_id),
        is_cached=cached,
    )


def batch_trigger_and_wait(
    entries: Sequence[Entry], options: Mapping[str, Any] | None = None
) -> Any:
    """Trigger a batch and park until every run is final (inside a run only)."""
    return batches.batch_trigger_and_wait(entries, options)
