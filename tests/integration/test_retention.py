"""Retention (issue 12 item 5, API.md "Additions (turn 2)": ``trigger_run_retention``): a
final run's keys go that long after it ended, through the timer service (no keyspace scan);
live runs keep theirs; listings never return ghosts; ``runs.retrieve`` raises
``RunNotFoundError``. Real Redis, a real worker."""

from __future__ import annotations

from typing import Any

import pytest

import celery_trigger as ct
from tests.helpers import redis_client, wait_for

from .conftest import Engine, wait_for_status


@ct.task(id="ret-child")
def ret_child(payload: Any) -> Any:
    if payload == "fail":
        raise ct.AbortTaskRunError("no")
    return payload


@ct.task(id="ret-parent")
def ret_parent(payload: Any) -> Any:
    ct.metadata.set("step", 1)
    list(ct.metadata.stream("words", ["a", "b"]))
    return ret_child.trigger_and_wait(payload).unwrap()


def _run_keys(engine: Engine) -> list[str]:
    return sorted(redis_client(engine.store).scan_iter(f"{engine.prefix}:*"))


def test_a_mixed_workload_leaves_only_live_keys(make_engine: Any) -> None:
    """Issue 12 item 5, RUNS-1: with retention 2 s, completed, failed, cancelled, batched,
    tagged, parent/child and streaming runs all disappear with their keys and index entries;
    a live (delayed) run keeps its keys without a TTL; the key count falls to a constant."""
    # Given an engine keeping final runs for 2 s, and a live delayed run
    engine = make_engine(run_retention=2)
    client = redis_client(engine.store)
    live = ret_child.trigger("later", delay="1h", tags=["keep"])
    with engine.worker():
        # When a mixed workload runs to completion
        done = [ret_child.trigger(i, tags=["t1", "t2"]) for i in range(5)]
        failed = ret_child.trigger("fail", tags=["t1"])
        parents = [ret_parent.trigger(f"p{i}", tags=["parent"]) for i in range(3)]
        batch = ret_child.batch_trigger([{"payload": i} for i in range(4)])
        cancelled = ret_child.trigger("x", delay="1h")
        ct.runs.cancel(cancelled.id)
        for handle in [*done, failed, *parents]:
            wait_for_status(handle.id, ct.RunStatus.COMPLETED, ct.RunStatus.FAILED)
        batch_runs = ct.batch.retrieve(batch.batch_id)["runs"]
        for run_id in batch_runs:
            wait_for_status(run_id, ct.RunStatus.COMPLETED)
        finished_keys = len(_run_keys(engine))

        # Then every final run's keys go, while the worker's timer service runs
        def only_live_left() -> bool:
            runs = [k for k in _run_keys(engine) if ":run:" in k]
            return all(live.id in k for k in runs)

        wait_for(only_live_left, timeout=20, message=f"run keys left: {_run_keys(engine)}")
    # And what is left is live (no TTL needed) or expiring, and much less than before
    left = _run_keys(engine)
    for key in left:
        owned_by_live = live.id in key or key.endswith((":timers", ":tag:keep", ":by_created"))
        assert owned_by_live or client.pttl(key) > 0 or ":queue" in key or ":task" in key, key
    # (queue and task definitions are the code's, one per queue any test module defines)
    runtime = [k for k in left if ":queue" not in k and not k.endswith(":tasks")]
    assert len(left) < finished_keys and len(runtime) <= 12, runtime
    # And listings hold no ghosts; retrieve of a retired run raises RunNotFoundError
    assert [r.id for r in ct.runs.list()] == [live.id]
    assert [r.id for r in ct.runs.list(tag="t1")] == []
    with pytest.raises(ct.RunNotFoundError):
        ct.runs.retrieve(done[0].id)
    assert ct.runs.retrieve(live.id).status is ct.RunStatus.DELAYED
    assert client.pttl(f"{engine.prefix}:run:{live.id}") == -1


def test_retention_none_keeps_final_runs(make_engine: Any) -> None:
    """API.md: ``trigger_run_retention=None`` keeps runs forever (no retire timer, no TTL)."""
    # Given retention None
    engine = make_engine(run_retention=None)
    with engine.worker():
        # When a run completes
        handle = ret_child.trigger(1)
        wait_for_status(handle.id, ct.RunStatus.COMPLETED)
    # Then its record has no TTL and no retire timer exists
    client = redis_client(engine.store)
    assert client.pttl(f"{engine.prefix}:run:{handle.id}") == -1
    assert not [m for m in client.zrange(engine.store.keys.timers(), 0, -1) if handle.id in m]
