"""Bare Celery app for the benchmarks (what the worker subprocess imports with ``-A``).

Configured by environment variables, read at import:
- ``BENCH_REDIS_URL``: base URL of the private redis-server (``redis://127.0.0.1:PORT``);
  the broker is DB 0 and the result backend DB 1, as in ``app_ct``;
- ``BENCH_BARE_QUEUE``: the queue the app sends to and the worker consumes (``bench-bare``);
- ``BENCH_BARE_SETTINGS``: ``default`` (Celery's defaults) or ``safe`` (every setting in
  ``celery_trigger._config.TRIGGER_TASK_SETTINGS``, applied app-wide here: the settings each
  celery-trigger task carries on its task class: acks_late, reject_on_worker_lost,
  track_started, JSON: exactly what trigger tasks run with);
- ``BENCH_PROBE``: a directory; when set, each pool child writes a timing breakdown there.
"""

from __future__ import annotations

import os
import time
from typing import Any

import redis
from celery import Celery

BASE = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379")
QUEUE = os.environ.get("BENCH_BARE_QUEUE", "bench-bare")
SETTINGS = os.environ.get("BENCH_BARE_SETTINGS", "default")

app = Celery("bench_bare", broker=f"{BASE}/0", backend=f"{BASE}/1", set_as_current=False)
app.conf.update(
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


def safe_settings() -> dict[str, Any]:
    """The Celery settings celery-trigger's ``setup()`` applies (read from the library)."""
    from celery_trigger._config import TRIGGER_TASK_SETTINGS

    return dict(TRIGGER_TASK_SETTINGS)


if SETTINGS == "safe":
    app.conf.update(safe_settings())
elif SETTINGS != "default":
    raise SystemExit(f"BENCH_BARE_SETTINGS must be default or safe, not {SETTINGS!r}")

_client: dict[str, Any] = {"pid": None, "r": None}


def r() -> Any:
    """One plain redis client per process, created after any fork."""
    if _client["pid"] != os.getpid():
        _client["r"] = redis.Redis.from_url(f"{BASE}/0")
        _client["pid"] = os.getpid()
    return _client["r"]


@app.task(name="bench.noop")
def noop(payload: Any = None) -> None:
    return None


@app.task(name="bench.count")
def count(payload: dict[str, Any]) -> None:
    """INCR a counter; the task that reaches ``total`` stamps the time (as the baseline)."""
    n = r().incr(payload["key"])
    if n >= payload["total"]:
        r().set(payload["key"] + ":done", repr(time.time()))


# The bare equivalents of the durable case's tasks (benchmarks/app_durable.py): a chord's
# header and callback; a chain child -> callback. Stamps are written after what they time.
@app.task(name="bench.fan_child")
def fan_child(i: int) -> int:
    return i


@app.task(name="bench.fan_join")
def fan_join(results: list[int], key: str) -> int:
    total = sum(results)
    r().hset(key, mapping={"total": total, "end": repr(time.time())})
    return total


@app.task(name="bench.chain_child")
def chain_child(key: str) -> str:
    r().hset(key, "child_end", repr(time.time()))
    return key


@app.task(name="bench.chain_callback")
def chain_callback(key: str) -> None:
    entered = time.time()
    r().hset(key, "resumed", repr(entered))


if os.environ.get("BENCH_PROBE"):
    from benchmarks.probe import install_worker_probe

    install_worker_probe(app, "bare")
