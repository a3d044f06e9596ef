"""A task that reports its progress live: ``ct.metadata.set`` plus a stream of log lines.

``progress-export`` exports ``payload["rows"]`` rows in ``payload["steps"]`` steps. After each
step it sets ``progress`` (0 to 1) in its metadata and flushes it at once, so a subscriber
sees every step (without ``flush`` the updates go out batched, about once a second). The log
lines it produces are published as the realtime stream ``log`` with ``ct.metadata.stream``:
each line is appended to the stream as the task produces it.

``run.py`` triggers the task and draws a terminal progress bar from
``ct.runs.subscribe_to_run(...).with_streams()``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from celery import Celery

import celery_trigger as ct

QUEUE = "progress"


def export_steps(rows: int, steps: int, pause: float) -> Iterator[str]:
    """Do the work step by step; after each step, report progress and yield a log line."""
    done = 0
    for i in range(1, steps + 1):
        time.sleep(pause)  # the work of one step
        done = rows * i // steps
        ct.metadata.set("progress", i / steps).set("rows_done", done)
        ct.metadata.flush()  # send now: subscribers see this step at once
        yield f"step {i}/{steps}: exported {done} rows"


@ct.task(id="progress-export")
def export(payload: dict[str, Any]) -> dict[str, Any]:
    """Export rows, publishing progress in metadata and log lines on the ``log`` stream."""
    rows, steps = int(payload["rows"]), int(payload["steps"])
    ct.metadata.set("progress", 0.0)
    lines = 0
    for _line in ct.metadata.stream("log", export_steps(rows, steps, payload.get("pause", 0.05))):
        lines += 1
    return {"rows": rows, "log_lines": lines}


def make_app(redis_url: str | None) -> Celery:
    """A Celery app with celery-trigger installed: embedded without a URL, else on Redis."""
    if redis_url is None:
        app = Celery("progress", broker="memory://localhost/", backend="cache+memory://")
        app.conf.trigger_store = "memory"
    else:
        app = Celery("progress", broker=redis_url, backend=redis_url)
        app.conf.trigger_key_prefix = "progress"
    app.conf.task_default_queue = QUEUE
    ct.setup(app)
    return app
