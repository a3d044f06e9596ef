"""Waking parked runs when what they wait for resolves (a child run, a token).

``notify_waiters`` runs right after the resolving write, in the process that made it. The
same write scheduled ``notify|<member>`` as a safety net: if this process dies first, the
timer service does the same work a few seconds later. Every step is idempotent.
"""

from __future__ import annotations

import time
from typing import Any

#: Delay of the fallback timers (notify, resume) behind the direct path, in ms.
SAFETY_MS = 5000


def notify_waiters(engine: Any, member: str) -> int:
    """Tell every run parked on ``member`` (a run id or ``token:<id>``); publish the resumes
    of those it wakes. Returns how many were woken."""
    from .._trigger import publish_record

    store = engine.store
    woken = 0
    for waiter in store.waiters(member):
        if store.notify(waiter, member, int(time.time() * 1000), SAFETY_MS):
            run_id = waiter.rpartition("|")[0]
            record = store.get_run(run_id)
            if record is not None and record.get("status") == "WAITING":
                publish_record(engine, record)
                woken += 1
    store.remove_timers([f"notify|{member}"])
    return woken


def wake(engine: Any, run_id: str) -> bool:
    """A parked run's timer is due: mark it woken and publish its resume."""
    from .._trigger import publish_record

    record = engine.store.wake(run_id)
    if record is None:
        return False
    publish_record(engine, record)
    return True
