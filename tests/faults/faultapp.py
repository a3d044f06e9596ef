"""The Celery app that fault-suite worker subprocesses load (``celery -A tests.faults.faultapp``).

Configured from the environment: ``CT_FAULT_STORE`` (the store's Redis URL),
``CT_FAULT_BROKER`` (the broker URL: the store's Redis, another Redis, or RabbitMQ),
``CT_FAULT_PREFIX`` (key prefix and broker queue), ``CT_FAULT_MARKS`` (a directory where
tasks drop marker files: which run ran, when, in which process).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from celery import Celery

import celery_trigger as ct

STORE = os.environ.get("CT_FAULT_STORE", "redis://127.0.0.1:6379/0")
BROKER = os.environ.get("CT_FAULT_BROKER", STORE)
PREFIX = os.environ.get("CT_FAULT_PREFIX", "fault")
MARKS = Path(os.environ.get("CT_FAULT_MARKS", "/tmp"))

app = Celery("faultapp", broker=BROKER, backend=None)
app.conf.task_default_queue = f"q-{PREFIX}"
app.conf.broker_connection_retry_on_startup = True
# Messages a dead worker prefetched, or whose ack a Redis restart swallowed, come back after
# the Redis transport's visibility timeout (kombu): short here, so the suite measures
# celery-trigger's recovery rather than that timeout (docs: keep it above task_time_limit).
app.conf.broker_transport_options = {
    "visibility_timeout": 5,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
ct.setup(
    app,
    redis_url=STORE,
    key_prefix=PREFIX,
    lease_seconds=1.5,
    timer_poll_interval=0.05,
    wait_threshold=0.5,
    timer_claim_lease=3.0,
    secret_key="fault-test-secret-0123456789abcdef",
)

limited = ct.queue(name=f"limited-{PREFIX}", concurrency_limit=2)


def mark(name: str) -> None:
    (MARKS / f"{name}.{os.getpid()}.{time.time_ns()}").touch()


def _work(payload: Any, ctx: ct.Context, kind: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        mark(f"nopayload-{ctx.run.id}")  # a run executed without its payload
        raise ct.AbortTaskRunError("no payload")
    mark(f"start-{kind}-{ctx.run.id}")
    deadline = time.monotonic() + payload["ms"] / 1000
    while time.monotonic() < deadline:
        time.sleep(0.01)
    mark(f"end-{kind}-{ctx.run.id}")
    return {"n": payload["n"]}


@ct.task(id="fault-work")
def fault_work(payload: Any, ctx: ct.Context) -> dict[str, Any]:
    return _work(payload, ctx, "work")


@ct.task(id="fault-limited", queue=limited)
def fault_limited(payload: Any, ctx: ct.Context) -> dict[str, Any]:
    return _work(payload, ctx, "limited")


@ct.task(id="fault-wait")
def fault_wait(payload: Any, ctx: ct.Context) -> dict[str, Any]:
    if not isinstance(payload, dict):
        mark(f"nopayload-{ctx.run.id}")
        raise ct.AbortTaskRunError("no payload")
    ct.wait.for_(seconds=payload["s"])
    mark(f"end-wait-{ctx.run.id}")
    return {"n": payload["n"]}


@ct.task(id="fault-meta")
def fault_meta(payload: Any, ctx: ct.Context) -> dict[str, Any]:
    """Sets metadata once while the store is down (the test drops ``outage`` in the marks
    directory, then ``done``); the write must survive the failed flushes."""
    mark(f"start-meta-{ctx.run.id}")
    noted = False
    deadline = time.monotonic() + 60  # the test marks "done" long before
    while not (MARKS / "done").exists() and time.monotonic() < deadline:
        if not noted and (MARKS / "outage").exists():
            ct.metadata.set("during_outage", True)
            mark(f"noted-meta-{ctx.run.id}")
            noted = True
        time.sleep(0.02)
    mark(f"end-meta-{ctx.run.id}")
    return {"noted": noted}
