"""Time and ids: the engine's clock in integer milliseconds and the id formats of runs and
batches (one place, so every module stamps and names alike)."""

from __future__ import annotations

import time
import uuid


def now_ms() -> int:
    """Wall-clock time in ms (what records store and timers are scored by)."""
    return int(time.time() * 1000)


def new_run_id() -> str:
    return f"run_{uuid.uuid4().hex[:24]}"


def new_batch_id() -> str:
    return f"batch_{uuid.uuid4().hex[:24]}"
