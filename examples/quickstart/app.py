"""Quickstart: a task with a retry policy, triggered and waited for.

Runs with no services at all (embedded store, in-memory broker, in-process worker)::

    python examples/quickstart/app.py

or against Redis (run records in Redis, Redis as Celery's broker and result backend)::

    python examples/quickstart/app.py --redis redis://localhost:6379/0

The first attempt fails on purpose; the retry policy runs a second attempt 100 ms later.
"""

from __future__ import annotations

import argparse
from typing import Any

from celery import Celery

import celery_trigger as ct
from celery_trigger.testing import run_worker


@ct.task(
    id="quickstart-greet",
    retry=ct.RetryOptions(max_attempts=3, min_timeout_in_ms=100, randomize=False),
)
def greet(payload: dict[str, Any], ctx: ct.Context) -> dict[str, Any]:
    """Greet someone; the first attempt fails like a flaky network call."""
    if ctx.attempt.number == 1:
        raise ConnectionError("greeting service unreachable")
    return {"message": f"Hello, {payload['name']}!", "attempt": ctx.attempt.number}


def make_app(redis_url: str | None) -> Celery:
    """A Celery app with celery-trigger installed: embedded without a URL, else on Redis."""
    if redis_url is None:
        app = Celery("quickstart", broker="memory://localhost/", backend="cache+memory://")
        app.conf.trigger_store = "memory"
    else:
        app = Celery("quickstart", broker=redis_url, backend=redis_url)
    ct.setup(app)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="celery-trigger quickstart")
    parser.add_argument("--redis", metavar="URL", help="use Redis at URL (default: embedded)")
    args = parser.parse_args(argv)
    app = make_app(args.redis)
    with run_worker(app):
        handle = greet.trigger({"name": "Ada"})
        run = ct.runs.poll(handle, poll_interval_ms=100)
    print(f"mode: {'redis' if args.redis else 'embedded'}")
    print(f"run {run.id}: {run.status} after {run.attempt_count} attempts")
    print(f"output: {run.output}")


if __name__ == "__main__":
    main()
