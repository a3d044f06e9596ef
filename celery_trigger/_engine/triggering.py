"""Triggering one run from code: outside a run a plain create-and-publish; inside a run a
journaled operation with a child id derived from the parent's position, so replaying the
parent never triggers the child twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..result import Result
from .dispatch import create_one
from .engine import current
from .journal import trigger_in_run
from .registry import TaskSpec
from .state import current_state
from .waits import trigger_and_wait as wait_for_child


def trigger(
    task_id: str, payload: Any, options: Mapping[str, Any], spec: TaskSpec | None = None
) -> tuple[str, bool]:
    """Create one run and publish it; ``(run id, cached)``. Validation errors raise before
    anything is written."""
    engine = current()
    if current_state() is not None:
        return trigger_in_run(
            task_id, lambda rid: create_one(engine, task_id, payload, options, spec, rid)
        )
    return create_one(engine, task_id, payload, options, spec)


def trigger_and_wait(
    task_id: str, payload: Any, options: Mapping[str, Any], spec: TaskSpec | None = None
) -> Result[Any]:
    """Trigger a child run and park until it is final; returns its ``Result``."""
    if current_state() is None:
        raise RuntimeError("trigger_and_wait can only be used from inside a task run")
    engine = current()
    return wait_for_child(
        task_id, lambda rid: create_one(engine, task_id, payload, options, spec, rid)
    )
