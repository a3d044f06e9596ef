"""Concurrency limits hold when a worker dies (issue 4 "Done when", DESIGN §6).

Three ``celery worker`` subprocesses share a limit-2 queue; one is SIGKILLed while it runs a
run. The dead worker's slots lapse with its leases, its run is taken over elsewhere, and the
limit is measured from the start and end times the runs themselves recorded.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest

import celery_trigger as ct
from tests.helpers import redis_client

from ..integration.conftest import wait_for
from .conftest import ROOT, CrashEnv, WorkerProcess, logs

pytestmark = [pytest.mark.crash, pytest.mark.slow]


@ct.task(
    id="crash-q-work",
    queue=ct.queue(name="crash-limit-2", concurrency_limit=2),
    retry={"max_attempts": 3, "min_timeout_in_ms": 100, "max_timeout_in_ms": 100},
)
def crash_q_work(payload: dict[str, Any]) -> int:
    """The producer's copy of ``tests/crash/queueapp.py``'s task (same id, queue and retry):
    like a real project, the process that triggers knows the task and its queue. Only the
    worker subprocesses run it."""
    raise NotImplementedError


def start_queue_worker(env: CrashEnv) -> WorkerProcess:
    """A prefork worker (2 processes) running ``tests.crash.queueapp``."""
    log = env.tmp / f"qworker{len(env.workers)}.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.crash.queueapp",
            "worker",
            "-P",
            "prefork",
            "-c",
            "2",
            "-Q",
            f"q-{env.prefix}",
            "-l",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"q{len(env.workers)}-{env.prefix}@%h",
        ],
        cwd=ROOT,
        env=env.env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = WorkerProcess(proc, log)
    env.workers.append(worker)
    return worker


def events(env: CrashEnv) -> list[dict[str, Any]]:
    raw = redis_client(env.trigger.store).lrange(f"{env.prefix}:qlog", 0, -1)
    return [json.loads(line) for line in raw]


def attempt_spans(rows: list[dict[str, Any]], killed_at: float) -> list[tuple[float, float]]:
    """(start, end) per attempt; an attempt that never ended died with its worker."""
    starts = {(r["run"], r["attempt"]): r["t"] for r in rows if r["ev"] == "start"}
    ends = {(r["run"], r["attempt"]): r["t"] for r in rows if r["ev"] == "end"}
    return [(t, ends.get(key, killed_at)) for key, t in starts.items()]


def _state(env: CrashEnv, handles: list[ct.RunHandle]) -> str:
    """The unfinished runs and the slot structures, for a failure message."""
    client, k = redis_client(env.trigger.store), env.trigger.store.keys
    open_runs = {
        h.id: env.trigger.store.get_run(h.id)
        for h in handles
        if not ct.runs.retrieve(h.id).is_completed
    }
    return repr(
        {
            "open": {
                i: {
                    f: (r or {}).get(f) for f in ("status", "slot", "lease_exp", "attempt", "woken")
                }
                for i, r in open_runs.items()
            },
            "slots": client.zrange(k.slots(), 0, -1, withscores=True),
            "count": client.hgetall(k.slots_count()),
            "ready": client.zrange(k.slots_ready(), 0, -1),
            "unclaimed": client.smembers(k.slots_unclaimed()),
            "waiting": {
                w: client.zrange(w, 0, -1) for w in client.scan_iter(f"{env.prefix}:q:*:waiting")
            },
            "timers": client.zrange(k.timers(), 0, -1, withscores=True),
            "now": time.time(),
        }
    )


def max_overlap(spans: list[tuple[float, float]]) -> int:
    steps = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    current = peak = 0
    for _, step in steps:
        current += step
        peak = max(peak, current)
    return peak


def test_limit_two_holds_and_nothing_leaks_when_a_worker_is_killed(crash_env: CrashEnv) -> None:
    """QUEUE-1/2 under a crash: 3 worker subprocesses, a limit-2 queue, 50 runs; SIGKILL one
    worker mid-run: every run completes, at most 2 ever execute at once, no slot is left."""
    # Given three workers and 50 runs of a limit-2 queue
    workers = [start_queue_worker(crash_env) for _ in range(3)]
    wait_for(
        lambda: crash_env.trigger.store.get_queue("crash-limit-2"),
        timeout=30,
        message="no worker registered the queue",
    )
    handles = [crash_q_work.trigger({"seconds": 0.25}) for _ in range(50)]

    # When a worker is SIGKILLed while it executes a run
    def running_on_a_worker() -> WorkerProcess | None:
        rows = events(crash_env)
        ended = {(r["run"], r["attempt"]) for r in rows if r["ev"] == "end"}
        for r in rows:
            if r["ev"] == "start" and (r["run"], r["attempt"]) not in ended and len(rows) > 10:
                group = os.getpgid(r["pid"])
                return next((w for w in workers if w.proc.pid == group), None)
        return None

    victim = wait_for(
        running_on_a_worker,
        timeout=60,
        interval=0.005,
        message=f"no run started; logs:\n{logs(crash_env)}",
    )
    victim.kill()
    killed_at = time.time()

    # Then every run completes
    def all_done() -> bool:
        return all(ct.runs.retrieve(h.id).is_completed for h in handles)

    wait_for(
        all_done,
        timeout=60,
        interval=0.2,
        message=f"runs did not all finish: {_state(crash_env, handles)}; logs:\n{logs(crash_env)}",
    )
    runs = [ct.runs.retrieve(h.id) for h in handles]
    assert {r.status for r in runs} == {ct.RunStatus.COMPLETED}
    # Then at most two executed at any instant (and the limit was used)
    rows = events(crash_env)
    assert max_overlap(attempt_spans(rows, killed_at)) == 2
    assert any(r.attempt_count > 1 for r in runs), "the killed worker's run was not retried"
    # Then no slot is held and nobody is left in line
    client, k = redis_client(crash_env.trigger.store), crash_env.trigger.store.keys
    assert client.zcard(k.slots()) == 0
    assert client.hlen(k.slots_count()) == 0
    assert client.zcard(k.slots_ready()) == 0
    assert list(client.scan_iter(f"{crash_env.prefix}:q:*:waiting")) == []
