"""celery-trigger benchmark app for the ``durable`` case (what its worker imports with ``-A``).

The same app, engine, queue and tasks as ``app_ct`` (imported from it, so configured by the
same environment; the case's worker sets ``BENCH_CT_WAIT_THRESHOLD`` so one-second waits
park), plus the durable tasks. Each task writes its timestamps (``time.time()``) to Redis
DB 0 in one call *after* the point it measures, so a stamp costs nothing in what it times:

- ``bench-fan-parent``: ``fan_child.batch_trigger_and_wait(range(n))``, then stores the sum
  of the outputs and its end time in the hash ``payload["key"]`` (the bare equivalent is
  ``app_bare.fan_join``, the callback of a chord);
- ``bench-resume-parent`` / ``bench-resume-child``: ``trigger_and_wait`` of a child that
  stamps ``child_end`` as its last statement; the parent stamps ``entered`` (when the resumed
  delivery entered the function, before the replay) and ``resumed`` (when
  ``trigger_and_wait`` returned) in the hash ``payload["key"]``;
- ``bench-timer``: ``ct.wait.for_(seconds=s)``; after it returns, stamps ``entered`` and
  ``resumed`` under field ``payload["i"]`` of the hashes ``<key>:entered`` / ``<key>:resumed``
  (the wait's target is the ``due`` of its journal entry, read by the case);
- ``bench-park``: ``ct.wait.for_(hours=1)``; never resumes within the benchmark.
"""

from __future__ import annotations

import time
from typing import Any

import celery_trigger as ct
from benchmarks.app_ct import app, engine, noop, r

__all__ = [
    "app",
    "engine",
    "fan_child",
    "fan_parent",
    "noop",
    "park",
    "resume_child",
    "resume_parent",
    "timer",
]


@ct.task(id="bench-fan-child")
def fan_child(payload: int) -> int:
    return payload


@ct.task(id="bench-fan-parent")
def fan_parent(payload: dict[str, Any]) -> int:
    results = fan_child.batch_trigger_and_wait([{"payload": i} for i in range(payload["n"])])
    total = int(sum(res.output for res in results if res.ok))
    r().hset(payload["key"], mapping={"total": total, "end": repr(time.time())})
    return total


@ct.task(id="bench-resume-child")
def resume_child(payload: dict[str, Any]) -> None:
    r().hset(payload["key"], "child_end", repr(time.time()))


@ct.task(id="bench-resume-parent")
def resume_parent(payload: dict[str, Any], ctx: ct.Context) -> None:
    entered, replaying = time.time(), ctx.is_replaying
    resume_child.trigger_and_wait({"key": payload["key"]})
    resumed = time.time()
    r().hset(
        payload["key"],
        mapping={"entered": repr(entered), "resumed": repr(resumed), "parked": int(replaying)},
    )


@ct.task(id="bench-timer")
def timer(payload: dict[str, Any]) -> None:
    entered = time.time()
    ct.wait.for_(seconds=payload["seconds"])
    resumed = time.time()
    pipe = r().pipeline(transaction=False)
    pipe.hset(payload["key"] + ":entered", payload["i"], repr(entered))
    pipe.hset(payload["key"] + ":resumed", payload["i"], repr(resumed))
    pipe.execute()


@ct.task(id="bench-park")
def park(payload: Any) -> None:
    ct.wait.for_(hours=1)
