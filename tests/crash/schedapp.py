"""The Celery app of the schedule crash tests (``celery -A tests.crash.schedapp``).

Configured like ``crashapp`` from ``CT_CRASH_*``, plus ``CT_SCHED_CLOCK``
(``origin_ms:offset_ms:speed``): the schedule clock every worker process shares, so that a
minute of schedule time passes in a fraction of a second. Its one task is declarative (every
minute) and drops a marker per execution named by the occurrence's nominal time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from celery import Celery

import celery_trigger as ct
from celery_trigger._engine import schedules as engine_schedules

REDIS = os.environ.get("CT_CRASH_REDIS", "redis://127.0.0.1:6379")
PREFIX = os.environ.get("CT_CRASH_PREFIX", "crash")
MARKS = Path(os.environ.get("CT_CRASH_MARKS", "/tmp"))
TASK_ID = "crash-every-minute"

app = Celery("schedapp", broker=f"{REDIS}/0", backend=f"{REDIS}/0")
app.conf.task_default_queue = f"q-{PREFIX}"
app.conf.broker_connection_retry_on_startup = True
ct.setup(
    app,
    key_prefix=PREFIX,
    lease_seconds=1.5,
    timer_poll_interval=0.01,
    timer_claim_lease=3.0,
    secret_key="crash-test-secret-0123456789abcdef",
)

if os.environ.get("CT_SCHED_CLOCK"):
    origin, offset, speed = os.environ["CT_SCHED_CLOCK"].split(":")
    engine_schedules.set_clock(engine_schedules.Clock(int(origin), int(offset), float(speed)))


@ct.schedules.task(id=TASK_ID, cron="* * * * *")
def every_minute(payload: ct.schedules.ScheduledPayload) -> dict[str, object]:
    stamp = int(payload.timestamp.timestamp())
    (MARKS / f"tick-{stamp}.{os.getpid()}.{time.time_ns()}").touch()
    return {
        "timestamp": payload.timestamp.isoformat(),
        "last_timestamp": payload.last_timestamp.isoformat() if payload.last_timestamp else None,
        "pid": os.getpid(),
    }
