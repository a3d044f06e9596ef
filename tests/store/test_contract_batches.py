"""The Store contract for batches created with their runs (``create_runs(..., batch=)``,
issue 12 item 3): the batch record is written in the same transaction as its runs, naming the
ids the creates resolved, and a failing create never leaves runs without their batch."""

from __future__ import annotations

import json

import pytest

from celery_trigger._store.base import Created, NewBatch, Store
from celery_trigger.errors import StoreUnavailableError

from .contract import NOW, create, new_run

FIELDS = {"id": "batch_1", "run_count": "3", "status": "COMPLETED"}


def test_the_batch_record_names_the_resolved_runs(store: Store) -> None:
    # Given a run that holds an idempotency key
    create(store, "run_old", idempotency_key="k", idempotency_ttl_ms=60_000)
    # When a batch of three is created, its middle item under that key
    runs = [
        new_run("run_a"),
        new_run("run_b", idempotency_key="k", idempotency_ttl_ms=60_000),
        new_run("run_c"),
    ]
    created = store.create_runs(runs, NOW, batch=NewBatch("batch_1", dict(FIELDS)))
    # Then the cached item is the key's owner, and the batch record says so
    assert created == [Created("run_a", False), Created("run_old", True), Created("run_c", False)]
    record = store.get_batch("batch_1")
    assert record is not None
    assert json.loads(record.pop("runs")) == ["run_a", "run_old", "run_c"]
    assert record == FIELDS


def test_a_failing_create_does_not_leave_runs_without_their_batch(store: Store) -> None:
    # When the second of three creates fails in the store (an idempotency key TTL of 0)
    runs = [
        new_run("run_a"),
        new_run("run_b", idempotency_key="k", idempotency_ttl_ms=0),
        new_run("run_c"),
    ]
    with pytest.raises(StoreUnavailableError):
        store.create_runs(runs, NOW, batch=NewBatch("batch_1", dict(FIELDS)))
    # Then every run that exists has its batch record
    existing = [r.run_id for r in runs if store.get_run(r.run_id) is not None]
    assert existing, "the store created nothing: the case under test did not happen"
    record = store.get_batch("batch_1")
    assert record is not None
    assert set(existing) <= set(json.loads(record["runs"]))
