"""Pending metadata survives a failed flush and is retried (issue 12 item 3): a metadata
write made while the store is down reaches the record once the store is back."""

from __future__ import annotations

import time
from typing import Any

import pytest

import celery_trigger as ct
from tests.helpers import wait_for

pytestmark = pytest.mark.crash


def test_metadata_set_during_a_store_outage_arrives_after_it(fault_env: Any) -> None:
    # Given a run executing on a worker whose store will go down (AOF: nothing else is lost)
    env = fault_env(aof=True, broker="redis")
    env.start_worker(concurrency=1)
    run_id = ct.tasks.trigger("fault-meta", {}).id
    wait_for(lambda: env.marks_named("start-meta-"), timeout=15, interval=0.02)
    # When the store stops, and the run sets metadata while it is down
    env.store.stop()
    (env.marks / "outage").touch()
    wait_for(lambda: env.marks_named("noted-meta-"), timeout=5, interval=0.02)
    # (two flush intervals pass, so at least one flush fails against the stopped store)
    deadline = time.monotonic() + 2.5
    wait_for(lambda: time.monotonic() >= deadline, timeout=4, interval=0.05)
    env.store.start()

    # Then, with the store back, the write arrives while the run is still executing
    def stored() -> bool:
        return (ct.runs.retrieve(run_id).metadata or {}).get("during_outage") is True

    wait_for(stored, timeout=10, interval=0.05, message="the metadata write was lost")
    assert ct.runs.retrieve(run_id).status is ct.RunStatus.EXECUTING
    (env.marks / "done").touch()
    wait_for(lambda: ct.runs.retrieve(run_id).is_completed, timeout=15, interval=0.05)
    assert ct.runs.retrieve(run_id).status is ct.RunStatus.COMPLETED
