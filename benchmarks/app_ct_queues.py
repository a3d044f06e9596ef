"""The celery-trigger benchmark app plus the ``queues`` case's tasks (``-A`` for its worker).

Everything of ``app_ct`` (same app, same settings, same Redis) and three copies of its
``count`` task that differ only in their queue: no limit, a shared limit, and a limit per
concurrency key. The benchmark process imports this module too, so triggers know the
queues' limits (runs of a limited queue take their place in line when created).
"""

from __future__ import annotations

import time
from typing import Any

import celery_trigger as ct
from benchmarks.app_ct import app, engine, r

__all__ = ["app", "count_free", "count_keyed", "count_limited", "engine"]

#: The shared limit equals the worker's pool size, so it never throttles: the case measures
#: what keeping the limit costs, not the limit itself.
LIMIT = 2


def _count(payload: dict[str, Any]) -> None:
    n = r().incr(payload["key"])
    if n >= payload["total"]:
        r().set(payload["key"] + ":done", repr(time.time()))


@ct.task(id="bench-q-free")
def count_free(payload: dict[str, Any]) -> None:
    _count(payload)


@ct.task(id="bench-q-limited", queue=ct.queue(name="bench-limited", concurrency_limit=LIMIT))
def count_limited(payload: dict[str, Any]) -> None:
    _count(payload)


@ct.task(id="bench-q-keyed", queue=ct.queue(name="bench-keyed", concurrency_limit=1))
def count_keyed(payload: dict[str, Any]) -> None:
    _count(payload)
