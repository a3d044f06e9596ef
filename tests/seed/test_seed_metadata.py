"""Seed §8 (run metadata) as the seed writes it, in Python: a parent that fans out to
children which report progress through ``metadata.parent``, the chained updater ending with
``flush()``. Task ids start with ``seed8-``."""

from __future__ import annotations

import uuid
from typing import Any

import celery_trigger as ct
from celery_trigger.status import RunStatus
from tests.integration.conftest import Engine, wait_for_status


def test_seed_section_8_progress_through_parent_metadata(engine: Engine) -> None:
    """§8.1, META-8: children increment the parent's counter; the parent reads it after
    ``refresh()``; the chained updater's ``flush()`` stores writes at once."""
    suffix = uuid.uuid4().hex[:6]

    @ct.task(id=f"seed8-child-{suffix}")
    def child(payload: dict[str, Any]) -> int:
        ct.metadata.parent.increment("done").append("log", f"row {payload['row']}").flush()
        return int(payload["row"])

    @ct.task(id=f"seed8-import-{suffix}")
    def import_rows(payload: dict[str, Any], ctx: ct.Context) -> dict[str, Any]:
        ct.metadata.set("status", "importing").set("total", payload["rows"]).flush()
        results = child.batch_trigger_and_wait(
            [{"payload": {"row": i}} for i in range(payload["rows"])]
        )
        ct.metadata.refresh()
        ct.metadata.set("status", "done")
        return {"sum": sum(r.unwrap() for r in results), "done": ct.metadata.get("done")}

    with engine.worker():
        # When the parent imports three rows
        handle = import_rows.trigger({"rows": 3})
        run = wait_for_status(handle.id, RunStatus.COMPLETED, timeout=30)
    # Then every child reported to the parent, and the parent saw it after refresh()
    assert run.output == {"sum": 3, "done": 3}
    assert run.metadata is not None
    assert run.metadata["status"] == "done" and run.metadata["done"] == 3
    assert sorted(run.metadata["log"]) == ["row 0", "row 1", "row 2"]
