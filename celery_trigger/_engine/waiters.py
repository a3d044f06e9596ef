"""Waking parked runs when what they wait for resolves (a child run, a token).

``notify_waiters`` runs right after the resolving write, in the process that made it. The
same write scheduled a ``notify`` timer as a safety net: if this process dies first, the
timer service does the same work a few seconds later. Every step is idempotent.
"""

from __future__ import annotations

from .._vocab import RunStatus, TimerKind
from .clock import now_ms
from .dispatch import publish_record
from .engine import Engine

#: Delay of the fallback timers (notify, resume) behind the direct path, in ms.
SAFETY_MS = 5000


def notify_waiters(engine: Engine, member: str) -> int:
    """Tell every run parked on ``member`` (a run id or ``token:<id>``); publish the resumes
    of those it wakes. Returns how many were woken."""
    store = engine.store
    woken = 0
    for waiter in store.waiters(member):
        if store.notify(waiter, member, now_ms(), SAFETY_MS):
            run_id = waiter.rpartition("|")[0]
            record = store.get_run(run_id)
            if record is not None and record.get("status") == RunStatus.WAITING.value:
                publish_record(engine, record)
                woken += 1
    store.remove_timers([TimerKind.NOTIFY.member(member)])
    return woken


def wake(engine: Engine, run_id: str) -> bool:
    """A parked run's timer is due: mark it woken and publish its resume.

    The ``resume`` timer is armed again first (the claim drops it): a resume message lost
    anyway (acknowledged by a worker that could not reach the store, purged) is published
    again, so a woken run always has something due."""
    record = engine.store.wake(run_id)
    if record is None:
        return False
    due = now_ms() + int(engine.settings.publish_watchdog * 1000)
    engine.store.add_timers([(TimerKind.RESUME.member(run_id), due)])
    publish_record(engine, record)
    return True
