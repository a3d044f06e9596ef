"""Queues: a shared concurrency limit, a per-user limit with concurrency keys, priority.

Three things a worker with 6 threads does here:

- ``emails``: 6 sends into a queue limited to 2 run 2 at a time;
- ``reports``: 6 reports for 2 users, limited to 1 per user (``concurrency_key``): each user's
  reports run one after another, the two users side by side;
- ``priority``: while the ``emails`` queue is busy, a run triggered later with
  ``priority=10`` (seconds) starts before one triggered earlier without priority.

Run it with no services (embedded) or against Redis::

    python examples/queues/app.py
    python examples/queues/app.py --redis redis://localhost:6379/0
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import defaultdict
from typing import Any

from celery import Celery

import celery_trigger as ct
from celery_trigger.testing import run_worker, wait_for_run

EMAILS = ct.queue(name="emails", concurrency_limit=2)
_lock = threading.Lock()
_running: dict[str, int] = defaultdict(int)
peaks: dict[str, int] = defaultdict(int)
started: list[str] = []


def _busy(group: str, seconds: float, label: str = "") -> None:
    """Count how many runs of ``group`` execute at once while this one sleeps."""
    with _lock:
        _running[group] += 1
        peaks[group] = max(peaks[group], _running[group])
        if label:
            started.append(label)
    time.sleep(seconds)
    with _lock:
        _running[group] -= 1


@ct.task(id="queues-send-email", queue=EMAILS)
def send_email(payload: dict[str, Any]) -> str:
    """Send one email; at most 2 sends run at a time, whatever the worker's size."""
    _busy("emails", payload.get("seconds", 0.2), payload.get("label", ""))
    return f"sent to {payload['to']}"


@ct.task(id="queues-build-report", queue={"concurrency_limit": 1})
def build_report(payload: dict[str, Any]) -> str:
    """Build a report; one at a time per user (the run's concurrency key)."""
    _busy(f"reports:{payload['user']}", 0.2)
    _busy("reports", 0)
    return f"report {payload['n']} for {payload['user']}"


def wait_until_executing(handles: list[ct.RunHandle], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(ct.runs.retrieve(h.id).is_executing for h in handles):
        if time.monotonic() > deadline:
            raise TimeoutError("runs did not start")
        time.sleep(0.01)


def make_app(redis_url: str | None) -> Celery:
    """A Celery app with celery-trigger installed: embedded without a URL, else on Redis."""
    if redis_url is None:
        app = Celery("queues", broker="memory://localhost/", backend="cache+memory://")
        app.conf.trigger_store = "memory"
    else:
        app = Celery("queues", broker=redis_url, backend=redis_url)
    ct.setup(app)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="celery-trigger queues example")
    parser.add_argument("--redis", metavar="URL", help="use Redis at URL (default: embedded)")
    args = parser.parse_args(argv)
    app = make_app(args.redis)
    with run_worker(app, concurrency=6):
        emails = [send_email.trigger({"to": f"user{i}@example.com"}) for i in range(6)]
        for handle in emails:
            wait_for_run(handle, timeout=30)
        print(f"emails: 6 sent, at most {peaks['emails']} at a time (limit 2)")

        reports = [
            build_report.trigger({"user": user, "n": n}, concurrency_key=user)
            for n in range(3)
            for user in ("ada", "bob")
        ]
        for handle in reports:
            wait_for_run(handle, timeout=30)
        print(
            f"reports: at most {peaks['reports:ada']} at a time for ada, "
            f"{peaks['reports:bob']} for bob (limit 1 per user)"
        )

        # two long sends take both slots; they end 0.4 s apart, freeing one slot at a time
        busy = [send_email.trigger({"to": "busy", "seconds": s}) for s in (0.3, 0.7)]
        wait_until_executing(busy)  # both slots of the queue are taken
        early = send_email.trigger({"to": "early", "label": "early"})
        late = send_email.trigger({"to": "late", "label": "late"}, priority=10)
        info = ct.queues.retrieve("emails")
        print(
            f"queue emails: limit {info.concurrency_limit}, "
            f"{info.running} running, {info.queued} queued"
        )
        for handle in (*busy, early, late):
            wait_for_run(handle, timeout=30)
        print(f"priority: started {' then '.join(started)}")


if __name__ == "__main__":
    main()
