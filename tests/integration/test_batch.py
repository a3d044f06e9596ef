"""``batch_trigger`` and ``ct.batch.trigger*`` (SEMANTICS §3.1, §3.2 batch rules, TRIG-8)."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

import celery_trigger as ct
from tests.helpers import redis_client

from .conftest import Engine, wait_for_status

# also run with the broker on another Redis database and on RabbitMQ (tests/brokers.py)
pytestmark = pytest.mark.brokers

SECRET = "test-secret-0123456789abcdef0123456789"


@ct.task(id="bat-double")
def bat_double(payload: int, ctx: ct.Context) -> dict[str, Any]:
    return {"value": payload * 2, "batch": ctx.batch.id if ctx.batch else None}


@ct.task(id="bat-upper")
def bat_upper(payload: str) -> str:
    return payload.upper()


def _nothing_written(engine: Engine) -> None:
    client = redis_client(engine.store)
    assert client.zcard(engine.store.keys.by_created()) == 0
    assert list(client.scan_iter(f"{engine.prefix}:run:*")) == []
    assert list(client.scan_iter(f"{engine.prefix}:batch:*")) == []
    assert client.llen(engine.queue) == 0


@pytest.mark.parametrize("count", [0, 1001])
def test_batch_size_outside_1_to_1000_is_rejected(engine: Engine, count: int) -> None:
    """TRIG-8: 0 or 1,001 items raise BatchTriggerError (phase "create"); nothing created."""
    # When a batch of the wrong size is triggered
    with pytest.raises(ct.BatchTriggerError) as info:
        bat_double.batch_trigger([{"payload": i} for i in range(count)])
    # Then the error describes the create phase and nothing was written
    assert info.value.phase == "create" and info.value.item_count == count
    assert not info.value.is_rate_limited
    _nothing_written(engine)


def test_batch_of_1000_items_is_accepted(engine: Engine) -> None:
    """TRIG-8: the upper bound itself is allowed."""
    handle = ct.tasks.batch_trigger("bat-double", [{"payload": i} for i in range(1000)])
    assert handle.run_count == 1000 and len(set(handle.runs)) == 1000


def test_batch_runs_complete_in_item_order_and_know_their_batch(engine: Engine) -> None:
    """§3.1: BatchHandle(batch_…, run_count, runs in item order, read:batch token);
    ``batch.retrieve``, ``runs.list(batch=…)`` and ``ctx.batch`` agree."""
    # Given a worker
    with engine.worker():
        # When three items are triggered, one with its own options, one as a BatchItem
        handle = bat_double.batch_trigger(
            [
                {"payload": 1},
                {"payload": 2, "options": {"tags": ["second"]}},
                ct.BatchItem(3, tags="third"),
            ]
        )
        runs = [wait_for_status(run_id) for run_id in handle.runs]
    # Then the handle describes the batch
    assert handle.batch_id.startswith("batch_") and handle.run_count == 3
    assert handle.public_access_token is not None
    claims = jwt.decode(
        handle.public_access_token, SECRET, algorithms=["HS256"], audience="celery-trigger"
    )
    assert claims["scopes"] == [f"read:batch:{handle.batch_id}"]
    # And each run completed with its own payload, options and the batch id
    assert [r.output for r in runs] == [{"value": v, "batch": handle.batch_id} for v in (2, 4, 6)]
    assert [r.tags for r in runs] == [[], ["second"], ["third"]]
    assert all(r.batch_id == handle.batch_id for r in runs)
    # And batch.retrieve and runs.list(batch=…) return the same runs
    record = ct.batch.retrieve(handle.batch_id)
    assert record["runs"] == handle.runs and record["run_count"] == 3
    assert {r.id for r in ct.runs.list(batch=handle.batch_id)} == set(handle.runs)


def test_batch_across_tasks_by_id_and_by_task(engine: Engine) -> None:
    """§3.1: ``batch.trigger`` by id and ``batch.trigger_by_task`` mix tasks in one batch."""
    # Given a worker
    with engine.worker():
        # When two mixed batches are triggered
        by_id = ct.batch.trigger(
            [{"id": "bat-double", "payload": 5}, {"id": "bat-upper", "payload": "ab"}]
        )
        by_task = ct.batch.trigger_by_task(
            [{"task": bat_upper, "payload": "cd"}, {"task": bat_double, "payload": 7}]
        )
        outputs = [wait_for_status(r).output for r in [*by_id.runs, *by_task.runs]]
    # Then every item ran its own task
    assert outputs == [
        {"value": 10, "batch": by_id.batch_id},
        "AB",
        "CD",
        {"value": 14, "batch": by_task.batch_id},
    ]
