"""D-20: ``priority`` works on unlimited queues too, as broker message priority (Redis
priority steps, RabbitMQ ``x-max-priority``), on both brokers with a real worker."""

from __future__ import annotations

import threading
from typing import Any

import celery_trigger as ct

from .conftest import Compat, wait_for_status

_gate = threading.Event()
_started: list[str] = []
_lock = threading.Lock()


@ct.task(id="prio-blocker")
def prio_blocker(payload: Any) -> None:
    _gate.wait(20)


@ct.task(id="prio-work")
def prio_work(payload: Any) -> str:
    with _lock:
        _started.append(payload["name"])
    return str(payload["name"])


def _configure(compat: Compat) -> None:
    # one execution at a time, nothing prefetched behind it
    compat.app.conf.worker_prefetch_multiplier = 1
    if compat.broker == "redis":
        # Redis: lower is sooner; Celery's documented way to leave room above the default
        compat.app.conf.task_default_priority = 9
    else:
        compat.app.conf.task_queue_max_priority = 10  # x-max-priority on the queue


def test_a_high_priority_run_queued_last_starts_first_on_an_unlimited_queue(
    make_app: Any,
) -> None:
    """D-20, §3.2: with the only worker busy, runs of priority 1 s queued first and a run of
    priority 1 h queued after them: the 1 h run starts first when the worker frees up."""
    compat = make_app()
    _configure(compat)
    _gate.clear()
    _started.clear()
    with compat.worker(concurrency=1):
        # Given the only worker busy with a blocker
        blocker = prio_blocker.trigger({})
        wait_for_status(blocker.id, "EXECUTING")
        # When three low-priority runs are queued, then a high-priority one
        low = [prio_work.trigger({"name": f"low{i}"}, priority=1) for i in range(3)]
        high = prio_work.trigger({"name": "high"}, priority=3600)
        _gate.set()
        for handle in [*low, high]:
            wait_for_status(handle.id, "COMPLETED")
    # Then the high-priority run started first, the low ones in their order after it
    assert _started == ["high", "low0", "low1", "low2"]


def test_runs_without_priority_keep_their_order(make_app: Any) -> None:
    """D-20: no priority given: FIFO as before (the priority mapping changes nothing)."""
    compat = make_app()
    _configure(compat)
    _gate.clear()
    _started.clear()
    with compat.worker(concurrency=1):
        blocker = prio_blocker.trigger({})
        wait_for_status(blocker.id, "EXECUTING")
        handles = [prio_work.trigger({"name": f"n{i}"}) for i in range(3)]
        _gate.set()
        for handle in handles:
            wait_for_status(handle.id, "COMPLETED")
    assert _started == ["n0", "n1", "n2"]
