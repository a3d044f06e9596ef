"""Races: concurrent triggers with one idempotency key, from many threads and from several
processes, and concurrent metadata writers in several processes (SEMANTICS §5.2, §8.1).

Convergence comes from one script per claim (``create_run.lua``: GET/SET of the key and the
record together) and one script per metadata write (``metadata_apply.lua``). Processes are
real subprocesses started together through a Redis list they block on (``BLPOP``), so they
hit the store at the same moment; no sleeps.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any

import celery_trigger as ct
from tests.helpers import redis_client

from .conftest import Engine

THREADS = 16
PROCESSES = 4
ROOT = __file__.rsplit("/tests/", 1)[0]

TRIGGER_SCRIPT = """
import json, sys, threading
from celery import Celery
import redis
import celery_trigger as ct

url, prefix, queue, start, threads, key = sys.argv[1:7]
app = Celery("race", broker=url, set_as_current=False)
app.conf.task_default_queue = queue
ct.setup(app, key_prefix=prefix)
task = ct.task(id="race-target", run=lambda payload: payload)
redis.Redis.from_url(url).blpop(start, timeout=30)
out, barrier = [], threading.Barrier(int(threads))

def one(i):
    barrier.wait()
    handle = task.trigger({"i": i}, idempotency_key=key)
    out.append([handle.id, handle.is_cached])

workers = [threading.Thread(target=one, args=(i,)) for i in range(int(threads))]
for w in workers: w.start()
for w in workers: w.join()
print(json.dumps(out))
"""

METADATA_SCRIPT = """
import json, sys
from celery import Celery
import redis
import celery_trigger as ct
from tests.helpers import redis_client

url, prefix, start, run_id, count = sys.argv[1:6]
app = Celery("race", broker=url, set_as_current=False)
ct.setup(app, key_prefix=prefix)
redis.Redis.from_url(url).blpop(start, timeout=30)
for i in range(int(count)):
    ct.runs.update_metadata(run_id, operations=[{"type": "increment", "key": "n", "value": 1},
                                                {"type": "append", "key": "log", "value": i}])
print("done")
"""


@ct.task(id="race-target")
def race_target(payload: Any) -> Any:
    return payload


def _in_processes(engine: Engine, script: str, args: Callable[[str], list[str]]) -> list[str]:
    """Start PROCESSES interpreters running ``script`` with ``args(start list)``, release
    them at once through the start list, return their stdout."""
    start = f"{engine.prefix}:start-{uuid.uuid4().hex[:6]}"
    url = engine.trigger.settings.redis_url
    command = [sys.executable, "-c", script, url, engine.prefix, *args(start)]
    procs = [
        subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(PROCESSES)
    ]
    redis_client(engine.store).rpush(start, *["go"] * PROCESSES)
    outs = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
        outs.append(stdout)
    return outs


def _count_runs(engine: Engine) -> int:
    return int(redis_client(engine.store).zcard(engine.store.keys.by_created()))


def test_many_threads_with_one_key_converge_on_one_run(engine: Engine) -> None:
    """IDEM-3 (race), §5.2: 16 threads released together trigger with one key: one run, one
    uncached handle, every other handle cached with the same id."""
    barrier = threading.Barrier(THREADS)
    handles: list[ct.RunHandle] = []

    def one(i: int) -> None:
        barrier.wait()
        handles.append(race_target.trigger({"i": i}, idempotency_key="same"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(handles) == THREADS
    assert len({h.id for h in handles}) == 1
    assert sorted(h.is_cached for h in handles) == [False] + [True] * (THREADS - 1)
    assert _count_runs(engine) == 1


def test_threads_racing_to_replace_a_failed_owner_converge_on_one_new_run(engine: Engine) -> None:
    """IDEM-6 (race), §5.2: a key still held by a FAILED run; 16 concurrent triggers create
    exactly one replacement."""
    old = race_target.trigger({"i": -1}, idempotency_key="failed-owner")
    redis_client(engine.store).hset(engine.store.keys.run(old.id), "status", "FAILED")
    barrier = threading.Barrier(THREADS)
    handles: list[ct.RunHandle] = []

    def one(i: int) -> None:
        barrier.wait()
        handles.append(race_target.trigger({"i": i}, idempotency_key="failed-owner"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    ids = {h.id for h in handles}
    assert len(ids) == 1 and old.id not in ids
    assert sorted(h.is_cached for h in handles) == [False] + [True] * (THREADS - 1)
    assert _count_runs(engine) == 2


def test_several_processes_with_one_key_converge_on_one_run(engine: Engine) -> None:
    """IDEM-3 (race across processes), §5.2: 4 processes x 4 threads trigger with one key at
    the same moment: one run exists and all 16 handles name it."""
    outs = _in_processes(
        engine, TRIGGER_SCRIPT, lambda start: [engine.queue, start, "4", "cross-process"]
    )
    handles = [h for out in outs for h in json.loads(out)]
    assert len(handles) == 16
    assert len({run_id for run_id, _ in handles}) == 1
    assert sorted(cached for _, cached in handles) == [False] + [True] * 15
    assert _count_runs(engine) == 1
    run = ct.runs.retrieve(handles[0][0])
    assert run.task_identifier == "race-target" and run.status is ct.RunStatus.QUEUED


def test_metadata_writers_in_several_processes_lose_no_update(engine: Engine) -> None:
    """META-8 (race across processes), §8.1: 4 processes x 50 API increments and appends on
    one run: exactly 200 of each."""
    handle = race_target.trigger({"i": 0}, metadata={"n": 0})
    _in_processes(engine, METADATA_SCRIPT, lambda start: [start, handle.id, "50"])
    doc = ct.runs.retrieve(handle.id).metadata
    assert doc["n"] == 200 and len(doc["log"]) == 200
