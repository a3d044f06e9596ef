"""The Store contract for task definitions and runs pending a version (``TaskStore``).
Every test runs against RedisStore and MemoryStore.
"""

from __future__ import annotations

from celery_trigger._store.base import (
    Store,
)

from .contract import NOW, create


def test_task_definitions_round_trip(store: Store) -> None:
    store.put_task_defs({"t.send": '{"queue": "emails"}', "t.other": "{}"})
    store.put_task_defs({})
    assert store.get_task_def("t.send") == '{"queue": "emails"}'
    assert store.get_task_def("t.missing") is None


def test_pending_runs_are_oldest_first_and_limited(store: Store) -> None:
    create(store, "run_b", pending_version=True, now=NOW + 1)
    create(store, "run_a", pending_version=True, now=NOW + 2)
    create(store, "run_c", pending_version=True, now=NOW)
    create(store, "run_x", task_id="t.other", pending_version=True)
    assert store.pending_runs("t.send", 2) == ["run_c", "run_b"]
    assert store.pending_runs("t.send", 0) == []
    assert store.pending_runs("t.none", 5) == []
