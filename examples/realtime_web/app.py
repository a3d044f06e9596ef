"""A task a browser starts and follows live: ``realtime-web-report`` builds a report in steps.

After each step it sets ``progress`` (0 to 1) in its metadata and flushes it at once, and it
publishes one log line per step on the realtime stream ``log`` (``ct.metadata.stream``). The
browser page (``static/index.html``) draws a progress bar from ``metadata.progress`` and
prints the log lines as they arrive.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from typing import Any

from celery import Celery

import celery_trigger as ct

QUEUE = "realtime-web"
TASK_ID = "realtime-web-report"
MAX_STEPS = 20


def sections(steps: int, pause: float) -> Iterator[str]:
    """Do the work step by step; after each step, report progress and yield a log line."""
    for i in range(1, steps + 1):
        time.sleep(pause)  # the work of one step
        ct.metadata.set("progress", i / steps)
        ct.metadata.flush()  # send now: the page sees this step at once
        yield f"section {i}/{steps} done"


@ct.task(id=TASK_ID)
def build_report(payload: dict[str, Any]) -> dict[str, Any]:
    """Build ``payload["steps"]`` sections (1 to 20; browsers send the payload, so clamp it)."""
    steps = min(max(int(payload.get("steps", 5)), 1), MAX_STEPS)
    pause = min(max(float(payload.get("pause", 0.2)), 0.0), 1.0)
    log = list(ct.metadata.stream("log", sections(steps, pause)))
    return {"sections": steps, "log": log}


def make_app(redis_url: str | None) -> Celery:
    """The Celery app with celery-trigger installed (embedded store without ``redis_url``).

    Web server and workers must share ``TRIGGER_SECRET_KEY``: it signs the tokens the page
    uses. Without it a random key is made, which is only right when everything runs in one
    process.
    """
    if redis_url is None:
        app = Celery("realtime_web", broker="memory://localhost/", backend="cache+memory://")
        app.conf.trigger_store = "memory"
    else:
        app = Celery("realtime_web", broker=redis_url, backend=redis_url)
        app.conf.trigger_key_prefix = "realtime_web"
    app.conf.task_default_queue = QUEUE
    app.conf.trigger_secret_key = os.environ.get("TRIGGER_SECRET_KEY") or secrets.token_hex(32)
    ct.setup(app)
    return app
