"""celery-trigger's own gauges, read from the store on demand (``celery_trigger.metrics``
reports them as OpenTelemetry observable gauges).

Every reading is a few cheap store reads (one per known queue, two for the timers, one per
concurrency key with runs in line); nothing is kept between readings. Runs by status and
parked runs are not read: the store keeps no per-status index, and counting them would scan
every run (a reading must stay cheap at any number of runs).
Invariant: a reading never raises because a queue vanished.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._keys import Keys
from . import queue_admin
from .clock import now_ms
from .engine import Engine

#: Queues read per page when listing every known queue.
_PAGE = 100


@dataclass(frozen=True)
class QueueReading:
    """One queue's slot counts: ``running`` runs hold a slot, ``queued`` wait for one."""

    queue: str
    running: int
    queued: int


@dataclass(frozen=True)
class KeyReading:
    """Runs of a queue waiting in one concurrency key's line."""

    queue: str
    concurrency_key: str
    queued: int


@dataclass(frozen=True)
class TimerReading:
    """Timers due now and not yet claimed, and how late the earliest of them is (ms)."""

    due: int
    lateness_ms: int


def queues(engine: Engine) -> list[QueueReading]:
    """Every known queue's running and queued counts."""
    out: list[QueueReading] = []
    page = 1
    while True:
        infos = queue_admin.page(engine, page, _PAGE)
        out.extend(QueueReading(i.name, i.running, i.queued) for i in infos)
        if len(infos) < _PAGE:
            return out
        page += 1


def concurrency_keys(engine: Engine) -> list[KeyReading]:
    """Runs waiting per concurrency key, for every stored queue's keys that have a line
    (read from each queue's set of sub-queues with waiting runs and their lines' sizes)."""
    store = engine.store
    out: list[KeyReading] = []
    for name in store.queue_names():
        for sub, waiting in store.subqueue_waiting(name).items():
            queue, key = Keys.split_subqueue(sub)
            if key:
                out.append(KeyReading(queue, key, waiting))
    return out


def timers(engine: Engine) -> TimerReading:
    """The timer set's backlog: a timer service keeping up reports 0 and ~0 ms."""
    now = now_ms()
    due, first = engine.store.timer_stats(now)
    return TimerReading(due, max(0, now - first) if first is not None else 0)
