"""celery-trigger app for the benchmarks (what the worker subprocess imports with ``-A``).

The same broker, backend and Celery configuration as ``app_bare`` (``default`` settings),
plus ``celery_trigger.setup(app)``, which applies its safe Celery defaults. Environment:
- ``BENCH_REDIS_URL``: base URL of the private redis-server; broker DB 0, backend DB 1;
- ``BENCH_CT_STORE_DB``: the run store's DB (default 0, the broker's: the default deployment,
  where triggers push the Celery message from the run-creation script; another DB makes
  celery-trigger publish with ``send_task`` instead);
- ``BENCH_CT_QUEUE``: the Celery queue (``bench-ct``);
- ``BENCH_KEY_PREFIX``: the store's key prefix (``bench``);
- ``BENCH_CT_SECRET``: ``trigger_secret_key``; empty means no token is signed per trigger
  (default: a 40-byte secret, so each handle carries a JWT as in a real deployment);
- ``BENCH_PROBE``: a directory; when set, each pool child writes a timing breakdown there;
- ``BENCH_CT_WAIT_THRESHOLD``: ``trigger_wait_threshold`` in seconds (unset: the default).
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery

import celery_trigger as ct

BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
QUEUE = os.environ.get("BENCH_CT_QUEUE", "bench-ct")
PREFIX = os.environ.get("BENCH_KEY_PREFIX", "bench")
SECRET = os.environ.get("BENCH_CT_SECRET", "bench-secret-0123456789abcdef0123456789")
STORE_DB = int(os.environ.get("BENCH_CT_STORE_DB", "0"))

app = Celery("bench_ct", broker=f"{BASE}/0", backend=f"{BASE}/1", set_as_current=False)
app.conf.update(
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)
if os.environ.get("BENCH_CT_WAIT_THRESHOLD"):  # the durable cases park 1 s waits
    app.conf.trigger_wait_threshold = float(os.environ["BENCH_CT_WAIT_THRESHOLD"])
engine = ct.setup(app, key_prefix=PREFIX, secret_key=SECRET, redis_url=f"{BASE}/{STORE_DB}")

_client: dict[str, Any] = {"pid": None, "r": None}


def r() -> Any:
    """One plain redis client per process, created after any fork."""
    if _client["pid"] != os.getpid():
        _client["r"] = redis.Redis.from_url(f"{BASE}/0")
        _client["pid"] = os.getpid()
    return _client["r"]


@ct.task(id="bench-noop")
def noop(payload: Any) -> None:
    return None


@ct.task(id="bench-count")
def count(payload: dict[str, Any]) -> None:
    """INCR a counter; the task that reaches ``total`` stamps the time (as ``app_bare``)."""
    n = r().incr(payload["key"])
    if n >= payload["total"]:
        r().set(payload["key"] + ":done", repr(time.time()))


if os.environ.get("BENCH_PROBE"):
    from benchmarks.probe import install_worker_probe

    install_worker_probe(app, "ct")
