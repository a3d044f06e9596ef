"""Compute usage and cost of the current run (SEMANTICS §13, ``ct.usage``).

``get_current()`` reports this attempt's compute so far and the run's total; ``measure``
the compute spent while a function ran. Outside a run every figure is zero. Example::

    result, compute = ct.usage.measure(crunch, rows)
    ct.logger.info("crunched", {"ms": compute.duration_ms, "cents": compute.cost_in_cents})
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ._engine import usage as _usage

T = TypeVar("T")


@dataclass(frozen=True)
class ComputeUsage:
    """Compute time (ms) and its cost in cents."""

    cost_in_cents: float
    duration_ms: int


@dataclass(frozen=True)
class Compute:
    """This attempt's compute so far, and the run's total including earlier attempts."""

    attempt: ComputeUsage
    total: ComputeUsage


@dataclass(frozen=True)
class CurrentUsage:
    """``usage.get_current()``: compute plus the run's base (invocation) cost."""

    compute: Compute
    base_cost_in_cents: float
    total_cost_in_cents: float


def get_current() -> CurrentUsage:
    """The current run's usage so far (zeros outside a run). Example:
    ``ct.usage.get_current().compute.attempt.duration_ms``."""
    ms, rate, before_ms, before_cost, base = _usage.snapshot()
    attempt = ComputeUsage(ms * rate, int(ms))
    total = ComputeUsage(before_cost + attempt.cost_in_cents, before_ms + attempt.duration_ms)
    return CurrentUsage(Compute(attempt, total), base, total.cost_in_cents + base)


def measure(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, ComputeUsage]:
    """Call ``fn(*args, **kwargs)``; return its result and the compute it used (zero cost
    outside a run). Example: ``result, compute = ct.usage.measure(sum, range(10))``."""
    start_ms, rate = _usage.attempt_ms()
    result = fn(*args, **kwargs)
    end_ms, _ = _usage.attempt_ms()
    if rate == 0.0 and start_ms == end_ms == 0.0:
        return result, ComputeUsage(0.0, 0)  # outside a run
    spent = max(0.0, end_ms - start_ms)
    return result, ComputeUsage(spent * rate, int(spent))


__all__ = ["Compute", "ComputeUsage", "CurrentUsage", "get_current", "measure"]
