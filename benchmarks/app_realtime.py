"""Benchmark app for the ``realtime`` case (what its workers import with ``-A``).

``BENCH_RT_SIDE`` picks the app the worker runs: ``ct`` (``app_ct``'s app, engine and queue)
or ``bare`` (``app_bare``'s, with Celery's default settings). The producer imports both.

Each progress task makes ``n`` updates in ping-pong with the benchmark's subscriber: it stamps
``time.time()`` into the update, publishes it, then blocks on ``BLPOP <ack>`` until the
subscriber has seen it, so updates never queue up or coalesce and each one times a single
publish-to-receive hop.

- ``bench-rt-progress`` (ct): ``ct.metadata.set("i", i).set("t", now)`` + ``ct.metadata.flush()``;
  the subscriber follows ``ct.runs.subscribe_to_run``.
- ``bench.rt_state`` (bare): ``self.update_state(state="PROGRESS", meta={"i": i, "t": now})``;
  the subscriber polls ``AsyncResult(id).info`` (each update waits a random part of the poll
  interval first, so it lands at a random phase of the poll loop).
- ``bench.rt_event`` (bare): ``self.send_event("task-progress", i=i, sent=now)``; the subscriber
  is a Celery event receiver (``app.events.Receiver``).
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import celery_trigger as ct
from benchmarks import app_bare, app_ct

SIDE = os.environ.get("BENCH_RT_SIDE", "ct")
ACK_TIMEOUT_S = 10

app = app_bare.app if SIDE == "bare" else app_ct.app
noop = app_ct.noop
bare_noop = app_bare.noop


def _wait_ack(key: str) -> None:
    if app_bare.r().blpop([key], timeout=ACK_TIMEOUT_S) is None:
        raise RuntimeError(f"no ack on {key} within {ACK_TIMEOUT_S} s")


@ct.task(id="bench-rt-progress")
def ct_progress(payload: dict[str, Any]) -> None:
    for i in range(payload["n"]):
        ct.metadata.set("i", i).set("t", time.time())
        ct.metadata.flush()
        _wait_ack(payload["ack"])


@app_bare.app.task(name="bench.rt_state", bind=True)
def bare_state(self: Any, n: int, ack: str, jitter: float = 0.0) -> None:
    """``jitter``: wait a random part of it before each update, so updates land at a random
    phase of the subscriber's poll loop (else they lock to it right after each ack)."""
    for i in range(n):
        if jitter:
            time.sleep(random.uniform(0, jitter))
        self.update_state(state="PROGRESS", meta={"i": i, "t": time.time()})
        _wait_ack(ack)


@app_bare.app.task(name="bench.rt_event", bind=True)
def bare_event(self: Any, n: int, ack: str) -> None:
    for i in range(n):
        self.send_event("task-progress", i=i, sent=time.time())
        _wait_ack(ack)
