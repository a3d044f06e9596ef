"""``ct.usage`` against real Redis and a real worker (SEMANTICS §13, USAGE-1…5). Task ids
start with ``us-``. Durations are busy loops measured by the run itself; the bounds are wide
(the machine is shared) but tell "counted" from "not counted" apart."""

from __future__ import annotations

import time
from typing import Any

import pytest

import celery_trigger as ct

from .conftest import Engine, wait_for_status

RATES = {"vcpu_second": 0.5, "gb_second": 0.25, "run": 0.1}


def busy(seconds: float) -> str:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "done"


def usage_dict() -> dict[str, Any]:
    current = ct.usage.get_current()
    return {
        "attempt_ms": current.compute.attempt.duration_ms,
        "attempt_cost": current.compute.attempt.cost_in_cents,
        "total_ms": current.compute.total.duration_ms,
        "base": current.base_cost_in_cents,
        "total_cost": current.total_cost_in_cents,
    }


@ct.task(id="us-busy", machine="small-2x")
def busy_task(payload: Any, ctx: ct.Context) -> dict[str, Any]:
    busy(1.0)
    result, compute = ct.usage.measure(busy, 0.5)
    return {
        **usage_dict(),
        "rate": ctx.machine.cents_per_ms,
        "measured": [result, compute.duration_ms, compute.cost_in_cents],
    }


@ct.task(id="us-wait")
def waiting(payload: Any) -> dict[str, Any]:
    before = usage_dict()["attempt_ms"]
    ct.wait.for_(seconds=2)  # over the wait threshold: a real wait (parks)
    after_real = usage_dict()["attempt_ms"]
    busy(0.3)
    ct.wait.for_(seconds=0.3)  # under the threshold: in-process, counted
    after_short = usage_dict()["attempt_ms"]
    return {"before": before, "after_real": after_real, "after_short": after_short}


@ct.task(id="us-retry", retry={"max_attempts": 2, "min_timeout_in_ms": 100, "randomize": False})
def retried(payload: Any, ctx: ct.Context) -> dict[str, Any]:
    busy(0.4)
    if ctx.attempt.number == 1:
        raise RuntimeError("again")
    return usage_dict()


def test_busy_second_and_measure_are_counted_and_priced(make_engine: Any) -> None:
    """USAGE-1, USAGE-4, USAGE-5: ~1 s busy then ``get_current`` reports ≈1000 ms (+ the
    measured 500 ms) at ``cents_per_ms``; ``measure`` returns the result and ≈500 ms;
    ``runs.retrieve`` reports the same duration, cost and base cost."""
    engine = make_engine(cost_rates=RATES)
    with engine.worker():
        handle = busy_task.trigger({})
        run = wait_for_status(handle.id, "COMPLETED")
    out = run.output
    rate = out["rate"]
    assert rate == pytest.approx((1 * 0.5 + 1 * 0.25) / 1000)
    assert 1450 <= out["attempt_ms"] < 2500
    assert out["attempt_cost"] == pytest.approx(out["attempt_ms"] * rate, rel=0.01)
    assert out["base"] == pytest.approx(0.1)
    assert out["total_cost"] == pytest.approx(out["attempt_cost"] + 0.1, rel=0.01)
    result, measured_ms, measured_cost = out["measured"]
    assert result == "done"
    assert 480 <= measured_ms < 1200
    assert measured_cost == pytest.approx(measured_ms * rate, rel=0.01)
    assert run.duration_ms >= out["attempt_ms"]
    assert run.cost_in_cents == pytest.approx(run.duration_ms * rate)
    assert run.base_cost_in_cents == pytest.approx(0.1)


def test_the_clock_stops_during_a_real_wait_and_runs_during_a_short_one(
    make_engine: Any,
) -> None:
    """USAGE-2: a real (parked) wait adds nothing meaningful; a busy 300 ms plus an
    in-process 300 ms wait adds ≈600 ms."""
    engine = make_engine(wait_threshold=1.0)
    with engine.worker():
        handle = waiting.trigger({})
        run = wait_for_status(handle.id, "COMPLETED", timeout=20)
    out = run.output
    assert out["after_real"] - out["before"] < 500  # the 2 s wait is not counted
    assert 550 <= out["after_short"] - out["after_real"] < 1500


def test_the_second_attempt_sees_the_first_in_its_total(engine: Engine) -> None:
    """USAGE-3: on attempt 2, total ≥ attempt 1's duration + this attempt's."""
    with engine.worker():
        handle = retried.trigger({})
        run = wait_for_status(handle.id, "COMPLETED")
    out = run.output
    assert out["attempt_ms"] >= 390
    assert out["total_ms"] >= out["attempt_ms"] + 390


def test_outside_a_run_usage_is_zero() -> None:
    """§13.1: outside a run every figure is zero; measure still returns the result."""
    current = ct.usage.get_current()
    assert current.compute.total.duration_ms == 0 and current.total_cost_in_cents == 0
    assert ct.usage.measure(sum, [1, 2]) == (3, ct.usage.ComputeUsage(0.0, 0))
