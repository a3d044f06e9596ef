"""A batch is created with its record (issue 12 item 3): when one item's create fails in the
store halfway through, the runs that were created are never left without their batch."""

from __future__ import annotations

import json

import pytest

import celery_trigger as ct
from tests.helpers import redis_client

from .conftest import Engine


@ct.task(id="bat-atomic")
def bat_atomic(payload: int) -> int:
    return payload


def test_a_create_failing_halfway_leaves_no_run_without_its_batch(engine: Engine) -> None:
    client = redis_client(engine.store)
    # Given a tag index key that Redis cannot add to (a string where a sorted set belongs)
    client.set(engine.store.keys.tag("broken"), "not-a-sorted-set")
    items = [{"payload": i} for i in range(5)]
    items[2]["options"] = {"tags": ["broken"]}
    # When a batch whose third item hits it is triggered
    with pytest.raises(ct.TriggerError):
        bat_atomic.batch_trigger(items)
    # Then the runs the store did create all belong to a batch record that exists
    run_keys = list(client.scan_iter(f"{engine.prefix}:run:*"))
    assert run_keys, "no run was created: the failure under test did not happen"
    for key in run_keys:
        batch_id = client.hget(key, "batch")
        assert batch_id, key
        record = client.hgetall(engine.store.keys.batch(batch_id))
        assert record, f"run {key} has no batch record {batch_id}"
        assert client.hget(key, "id") in json.loads(record["runs"])
