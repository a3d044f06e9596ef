"""What a delivery does when the store cannot be reached, and the fault counters.

Invariant: a delivery that could not be processed because the store was unreachable is
never acknowledged as done. The Celery layer gives the message back to the broker
(``Reject(requeue=True)``: measured to requeue under the trigger task class's late ack, on
Redis and RabbitMQ brokers) after ``wait_for_store`` has waited, bounded, for the store to
answer again, so an outage is neither a hot redelivery loop nor a lost message, and the
message runs within a ``PROBE_S`` of the store returning.

The counters (``count``/``counters``) are per process: how often a fault path was taken
(``store_unavailable``: deliveries given back; ``missing_record``: deliveries dropped
because the run they name is gone).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import TypeVar

from ..errors import StoreUnavailableError
from .engine import Engine

#: Longest a delivery holds its message waiting for the store before giving it back (s).
HOLD_S = 5.0
#: How often a held delivery probes the store (s).
PROBE_S = 0.2

T = TypeVar("T")

STORE_UNAVAILABLE = "store_unavailable"
MISSING_RECORD = "missing_record"

_counts: Counter[str] = Counter()
_lock = threading.Lock()


def count(name: str) -> None:
    """Count one occurrence of the fault path ``name`` in this process."""
    with _lock:
        _counts[name] += 1


def counters() -> dict[str, int]:
    """A copy of this process's fault counters."""
    with _lock:
        return dict(_counts)


def wait_for_store(engine: Engine, hold_s: float = HOLD_S) -> bool:
    """Wait up to ``hold_s`` for the store to answer; True when it does."""
    deadline = time.monotonic() + hold_s
    while True:
        try:
            if engine.store.ping():
                return True
        except StoreUnavailableError:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(PROBE_S)


def retrying(engine: Engine, call: Callable[[], T], hold_s: float = HOLD_S) -> T:
    """``call()``, called again while it fails with ``StoreUnavailableError`` and the store
    comes back within ``hold_s`` (then the error is raised). For idempotent writes whose
    value exists only in this process (an attempt's outcome): losing them to a blip would
    run the attempt again."""
    deadline = time.monotonic() + hold_s
    while True:
        try:
            return call()
        except StoreUnavailableError:
            left = deadline - time.monotonic()
            if left <= 0 or not wait_for_store(engine, left):
                raise
