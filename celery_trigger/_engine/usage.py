"""Compute usage of the executing attempt (SEMANTICS §13): what ``usage.get_current`` reads.

The attempt's compute clock runs while its run phase runs (``Usage`` participant sets
``started_mono``) and stops when a real wait parks the run: the resumed attempt starts a new
clock and adds the time used before the park (``attempt_ms_before``). ``totals`` hold what
the run's earlier attempts used. Outside a run everything is zero.
"""

from __future__ import annotations

import time

from .state import current_state


def attempt_ms() -> tuple[float, float]:
    """(this attempt's compute ms so far, its machine's cents per ms); (0, 0) outside a run."""
    state = current_state()
    if state is None:
        return 0.0, 0.0
    running = time.monotonic() - state.started_mono if state.started_mono is not None else 0.0
    return state.attempt_ms_before + running * 1000, state.ctx.machine.cents_per_ms


def snapshot() -> tuple[float, float, int, float, float]:
    """(attempt ms, cents per ms, earlier attempts' ms, their cost, base cost in cents)."""
    state = current_state()
    if state is None:
        return 0.0, 0.0, 0, 0.0, 0.0
    ms, rate = attempt_ms()
    # totals already include the part of this attempt spent before a park
    before_ms = max(0, state.totals.duration_ms - state.attempt_ms_before)
    before_cost = max(0.0, state.totals.cost - state.attempt_ms_before * rate)
    return ms, rate, before_ms, before_cost, state.ctx.run.base_cost_in_cents
