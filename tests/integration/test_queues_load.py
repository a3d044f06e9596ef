"""Load: 2,000 runs over 100 concurrency keys with limit 1 each (issue 4 "Done when").

Every run body records its start and end; no key may ever have two bodies overlapping, and
the worker's threads should stay busy (utilisation = body time / (wall time x threads)).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from typing import Any

import pytest

import celery_trigger as ct
from tests.helpers import redis_client

from .conftest import Engine, wait_for

pytestmark = pytest.mark.slow

RUNS, KEYS, THREADS, WORK_S = 2000, 100, 8, 0.01
_lock = threading.Lock()
BODIES: list[tuple[float, float, str]] = []


def _body(payload: dict[str, Any]) -> None:
    started = time.monotonic()
    time.sleep(WORK_S)
    with _lock:
        BODIES.append((started, time.monotonic(), payload["key"]))


@ct.task(id="tq-load", queue=ct.queue(name="tq-load", concurrency_limit=1))
def tq_load(payload: dict[str, Any]) -> None:
    _body(payload)


@ct.task(id="tq-load-free")
def tq_load_free(payload: dict[str, Any]) -> None:
    _body(payload)


def _drive(engine: Engine, task: Any, keyed: bool) -> tuple[float, list[str]]:
    """Trigger the 2,000 runs in two batches; return the wall time until all bodies ran."""
    BODIES.clear()
    items = [
        {
            "payload": {"key": f"k{i % KEYS}"},
            "options": {"concurrency_key": f"k{i % KEYS}"} if keyed else {},
        }
        for i in range(RUNS)
    ]
    with engine.worker(concurrency=THREADS):
        started = time.monotonic()
        handles = [task.batch_trigger(items[i : i + 1000]) for i in range(0, RUNS, 1000)]
        wait_for(
            lambda: len(BODIES) >= RUNS,
            timeout=90,
            interval=0.05,
            message=f"only {len(BODIES)} of {RUNS} runs finished",
        )
        wall = time.monotonic() - started
    return wall, [run_id for h in handles for run_id in h.runs]


def _violations(bodies: list[tuple[float, float, str]]) -> int:
    """Pairs of bodies of one key that overlapped in time."""
    by_key: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for start, end, key in bodies:
        by_key[key].append((start, end))
    bad = 0
    for spans in by_key.values():
        spans.sort()
        bad += sum(1 for (_, end), (start, _) in itertools.pairwise(spans) if start < end)
    return bad


def test_two_thousand_runs_over_a_hundred_keys_never_break_a_limit(
    engine: Engine, record_property: Any
) -> None:
    """QUEUE-2 at load: 2,000 runs, 100 keys, limit 1 per key, 8 worker threads: zero
    violations, every run completes, no slot left; utilisation is reported, next to the same
    work on an unlimited queue."""
    # Given the same 2,000 runs on an unlimited queue, for reference
    free_wall, _ = _drive(engine, tq_load_free, keyed=False)
    # When 2,000 keyed runs of the limit-1 queue are triggered in two batches and all ran
    wall, run_ids = _drive(engine, tq_load, keyed=True)
    # Then no key ever ran two bodies at once, and nothing is left behind
    assert _violations(BODIES) == 0
    assert len(BODIES) == RUNS
    statuses = {r["status"] for r in engine.store.get_runs(run_ids) if r}
    assert statuses == {"COMPLETED"}
    client, k = redis_client(engine.store), engine.store.keys
    assert client.zcard(k.slots()) == 0 and client.zcard(k.slots_ready()) == 0
    assert ct.queues.retrieve("tq-load").queued == 0
    busy = sum(end - start for start, end, _ in BODIES)
    utilisation = busy / (wall * THREADS)
    record_property("utilisation", round(utilisation, 3))
    record_property("runs_per_second", round(RUNS / wall, 1))
    record_property("vs_unlimited", round(free_wall / wall, 3))
    print(
        f"\n{RUNS} runs over {KEYS} keys: {wall:.1f} s, {RUNS / wall:.0f} runs/s, "
        f"utilisation {utilisation:.0%} of {THREADS} threads; the same runs on an unlimited "
        f"queue: {free_wall:.1f} s (keyed rate = {free_wall / wall:.2f}x unlimited)"
    )
