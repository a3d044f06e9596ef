"""The Celery app of the queue crash test's worker subprocesses (``-A tests.crash.queueapp``).

Configured like ``crashapp`` from ``CT_CRASH_REDIS`` and ``CT_CRASH_PREFIX``. Its task records
when each attempt starts and ends in the Redis list ``<prefix>:qlog`` (JSON lines with the
pool process id), so the test can measure concurrency from what actually executed.
"""

from __future__ import annotations

import json
import os
import time

import redis
from celery import Celery

import celery_trigger as ct

REDIS = os.environ.get("CT_CRASH_REDIS", "redis://127.0.0.1:6379")
PREFIX = os.environ.get("CT_CRASH_PREFIX", "crash")

app = Celery("queueapp", broker=f"{REDIS}/0", backend=f"{REDIS}/0")
app.conf.task_default_queue = f"q-{PREFIX}"
app.conf.broker_connection_retry_on_startup = True
ct.setup(
    app,
    key_prefix=PREFIX,
    lease_seconds=1.5,
    timer_poll_interval=0.05,
    timer_claim_lease=3.0,
    secret_key="crash-test-secret-0123456789abcdef",
)
_log = redis.Redis.from_url(f"{REDIS}/0")


def _event(kind: str, ctx: ct.Context) -> None:
    _log.rpush(
        f"{PREFIX}:qlog",
        json.dumps(
            {
                "ev": kind,
                "run": ctx.run.id,
                "t": time.time(),
                "attempt": ctx.attempt.number,
                "pid": os.getpid(),
            }
        ),
    )


@ct.task(
    id="crash-q-work",
    queue=ct.queue(name="crash-limit-2", concurrency_limit=2),
    retry={"max_attempts": 3, "min_timeout_in_ms": 100, "max_timeout_in_ms": 100},
)
def crash_q_work(payload: dict, ctx: ct.Context) -> int:
    _event("start", ctx)
    time.sleep(payload["seconds"])
    _event("end", ctx)
    return int(ctx.attempt.number)
