"""The Celery app that crash-test worker subprocesses load (``celery -A tests.crash.crashapp``).

Configured from the environment: ``CT_CRASH_REDIS`` (URL), ``CT_CRASH_PREFIX`` (key prefix
and broker queue), ``CT_CRASH_MARKS`` (a directory where tasks drop marker files so the test
can see which process ran what).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import Celery

import celery_trigger as ct
from tests import brokers

REDIS = os.environ.get("CT_CRASH_REDIS", "redis://127.0.0.1:6379")
PREFIX = os.environ.get("CT_CRASH_PREFIX", "crash")
MARKS = Path(os.environ.get("CT_CRASH_MARKS", "/tmp"))

# the broker set-up of tests/brokers.py (CELERY_TRIGGER_TEST_BROKER); the store is always db 0
app = Celery("crashapp", broker=brokers.broker_url(REDIS), backend=f"{REDIS}/0")
app.conf.task_default_queue = f"q-{PREFIX}"
app.conf.broker_connection_retry_on_startup = True
ct.setup(
    app,
    redis_url=f"{REDIS}/0",
    key_prefix=PREFIX,
    lease_seconds=1.5,
    timer_poll_interval=0.05,
    wait_threshold=0.5,
    timer_claim_lease=3.0,
    secret_key="crash-test-secret-0123456789abcdef",
)


def mark(name: str) -> None:
    (MARKS / f"{name}.{os.getpid()}.{time.time_ns()}").touch()


@ct.task(id="crash-slow")
def crash_slow(payload: dict, ctx: ct.Context) -> dict:
    mark(f"start-{ctx.run.id}-{ctx.attempt.number}")
    deadline = time.monotonic() + payload["seconds"]
    while time.monotonic() < deadline:
        time.sleep(0.05)
    mark(f"end-{ctx.run.id}")
    return {"attempt": ctx.attempt.number, "pid": os.getpid()}


@ct.task(id="crash-child")
def crash_child(payload: dict) -> dict:
    return {"n": payload["n"]}


@ct.task(id="crash-parker")
def crash_parker(payload: dict, ctx: ct.Context) -> dict:
    mark(f"parker-{ctx.run.id}")
    ct.wait.for_(seconds=payload["seconds"])
    mark(f"resumed-{ctx.run.id}")
    child = crash_child.trigger_and_wait({"n": 7})
    return {"child": child.unwrap(), "attempt": ctx.attempt.number}


if os.environ.get("CT_CRASH_KILL_ON_RESUME"):
    # Test hook: die (SIGKILL, no clean-up) the first time this worker's timer service is
    # about to publish a resume, i.e. after it claimed the timer and before it acked it.
    import signal

    from celery_trigger._engine import timers as _timers

    def _die(self: object, run_id: str) -> None:
        mark(f"dying-on-resume-{run_id}")
        os.kill(os.getpid(), signal.SIGKILL)

    _timers.TimerService._resume = _die  # type: ignore[method-assign,assignment]
