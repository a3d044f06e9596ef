"""Task definitions, run functions and ``ctx`` against real Redis and a real worker (SEMANTICS
§1.1, §1.7, §1.8, TASK-28, TASK-29, D-9). Task ids start with ``lc-``.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any

import pytest

import celery_trigger as ct
from celery_trigger.status import RunStatus

from .conftest import Engine, wait_for_status

_notes: dict[str, Any] = {}


@ct.task(id="lc-plain")
def plain(payload: dict[str, Any]) -> dict[str, Any]:
    return {"doubled": payload["n"] * 2}


@ct.task(id="lc-async")
async def async_with_ctx(payload: dict[str, Any], ctx: ct.Context) -> dict[str, Any]:
    await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    return {
        "n": payload["n"],
        "attempt": ctx.attempt.number,
        "loop": id(loop),
        "sees_ctx": ct.context.current() is ctx,
    }


@ct.task(id="lc-async-plain")
async def async_plain(payload: int) -> int:
    await asyncio.sleep(0)
    return payload + 1


@ct.task(id="lc-ctx")
def capture_ctx(payload: Any, ctx: ct.Context) -> str:
    _notes[ctx.run.id] = (ctx, ct.context.current())
    return "captured"


@ct.task(id="lc-large", machine="large-1x")
def on_large(payload: Any, ctx: ct.Context) -> dict[str, Any]:
    return {"name": ctx.machine.name, "cpu": ctx.machine.cpu, "memory": ctx.machine.memory}


@ct.task(id="lc-cpu-memory", machine={"cpu": 1, "memory": 2})
def on_cpu_memory(payload: Any, ctx: ct.Context) -> str:
    return ctx.machine.name


@ct.task(id="lc-costed", machine="small-2x")
def costed(payload: Any, ctx: ct.Context) -> dict[str, float]:
    time.sleep(0.2)
    return {
        "cents_per_ms": ctx.machine.cents_per_ms,
        "base_cost_in_cents": ctx.run.base_cost_in_cents,
    }


RATES = {"vcpu_second": 0.5, "gb_second": 0.25, "run": 0.1}


def test_sync_run_without_ctx_gets_only_the_payload(engine: Engine) -> None:
    """§1.1, API.md: a run function may take just ``(payload)``; its return value is the output."""
    # Given a worker and a task whose function takes only the payload
    with engine.worker():
        # When it is triggered
        handle = plain.trigger({"n": 21})
        run = wait_for_status(handle.id)
    # Then it completed with the function's return value
    assert run.status is RunStatus.COMPLETED and run.output == {"doubled": 42}


def test_async_runs_share_one_event_loop_per_process(engine: Engine) -> None:
    """§1.1, API.md: ``async def`` run functions work, with or without ctx; they run on one
    event loop per worker process (not a new loop per run) and see ``ct.context.current()``."""
    # Given a worker and async tasks
    with engine.worker(concurrency=2):
        # When several async runs are triggered
        handles = [async_with_ctx.trigger({"n": n}) for n in range(3)]
        other = async_plain.trigger(41)
        runs = [wait_for_status(h.id) for h in handles]
        other_run = wait_for_status(other.id)
    # Then each completed, saw its context, and all used the same loop
    outputs = [r.output for r in runs]
    assert [o["n"] for o in outputs] == [0, 1, 2]
    assert all(o["attempt"] == 1 and o["sees_ctx"] for o in outputs)
    assert len({o["loop"] for o in outputs}) == 1
    assert other_run.output == 42


def test_ctx_describes_the_run_and_context_current_returns_it(make_engine: Any) -> None:
    """§1.8, TASK-31 (attempt 1): ctx carries task id, run id, trigger-time tags, attempt number
    and start, queue, machine, environment type, is_test; ``ct.context.current()`` inside the
    run is the same object."""
    # Given a STAGING worker
    engine = make_engine(environment="STAGING")
    with engine.worker():
        # When a run is triggered with tags
        handle = capture_ctx.trigger({}, tags=["a", "b"])
        run = wait_for_status(handle.id, "COMPLETED")
    # Then ctx described that run
    ctx, current = _notes[handle.id]
    assert current is ctx
    assert ctx.task.id == "lc-ctx" and ctx.run.id == handle.id
    assert list(ctx.run.tags) == ["a", "b"]
    assert ctx.attempt.number == 1
    assert run.created_at is not None
    assert run.created_at <= ctx.attempt.started_at <= datetime.now(timezone.utc)
    assert ctx.attempt.started_at.tzinfo is not None
    assert ctx.queue.name == "task/lc-ctx"
    assert (ctx.machine.name, ctx.machine.cpu, ctx.machine.memory) == ("small-1x", 0.5, 0.5)
    assert ctx.environment.type == "STAGING"
    assert ctx.run.is_test is False and ctx.run.is_replay is False
    assert ctx.run.max_attempts == 3  # the built-in default policy (D-1)


def test_context_current_is_none_outside_a_run(engine: Engine) -> None:
    """§1.8: ``ct.context.current()`` returns None outside a run."""
    # Given no run executing in this thread
    # When the current context is asked for
    # Then there is none
    assert ct.context.current() is None


def test_trigger_machine_beats_the_task_machine(engine: Engine) -> None:
    """TASK-28, §1.7: a task with machine large-1x triggered with machine micro runs on micro
    (0.25 vCPU, 0.25 GB); without the option it runs on large-1x."""
    # Given a worker and a large-1x task
    with engine.worker():
        # When it is triggered with and without machine="micro"
        small = on_large.trigger({}, machine="micro")
        default = on_large.trigger({})
        runs = [wait_for_status(h.id, "COMPLETED") for h in (small, default)]
    # Then ctx.machine is the chosen preset
    assert runs[0].output == {"name": "micro", "cpu": 0.25, "memory": 0.25}
    assert runs[1].output == {"name": "large-1x", "cpu": 4, "memory": 8}
    assert [r.machine for r in runs] == ["micro", "large-1x"]


def test_deprecated_cpu_memory_machine_runs_on_the_matching_preset(engine: Engine) -> None:
    """TASK-29, §1.7: a task declared with {cpu: 1, memory: 2} runs on medium-1x."""
    # Given a worker and a task declared with the deprecated form
    with engine.worker():
        # When it runs
        handle = on_cpu_memory.trigger({})
        run = wait_for_status(handle.id, "COMPLETED")
    # Then ctx.machine names the resolved preset
    assert run.output == "medium-1x"


def test_cost_rates_price_the_machine_and_the_run(make_engine: Any) -> None:
    """D-9, §1.7: with cost rates configured, ctx.machine.cents_per_ms = (cpu * vCPU rate +
    memory * GB rate) / 1000; runs.retrieve reports duration_ms, cost_in_cents = duration *
    cents_per_ms and base_cost_in_cents = the per-run rate."""
    # Given a worker with cost rates and a task on small-2x (1 vCPU, 1 GB) that works 200 ms
    engine = make_engine(cost_rates=RATES)
    with engine.worker():
        # When it runs
        handle = costed.trigger({})
        run = wait_for_status(handle.id, "COMPLETED")
    # Then the machine price, the duration and the costs are consistent
    assert run.output["cents_per_ms"] == pytest.approx((1 * 0.5 + 1 * 0.25) / 1000)
    assert run.output["base_cost_in_cents"] == pytest.approx(0.1)
    assert 200 <= run.duration_ms < 1000
    assert run.cost_in_cents == pytest.approx(run.duration_ms * 0.00075)
    assert run.base_cost_in_cents == pytest.approx(0.1)


def test_development_runs_cost_nothing_but_record_durations(make_engine: Any) -> None:
    """D-9, D-11: in DEVELOPMENT the same rates give cents_per_ms 0, cost 0 and base cost 0,
    while duration_ms is still recorded."""
    # Given a DEVELOPMENT worker with cost rates configured
    engine = make_engine(cost_rates=RATES, environment="DEVELOPMENT")
    with engine.worker():
        # When a 200 ms run executes
        handle = costed.trigger({})
        run = wait_for_status(handle.id, "COMPLETED")
    # Then nothing is charged and the duration is there
    assert run.output == {"cents_per_ms": 0.0, "base_cost_in_cents": 0.0}
    assert run.cost_in_cents == 0 and run.base_cost_in_cents == 0
    assert run.duration_ms >= 200


def test_without_rates_costs_are_zero_and_durations_recorded(engine: Engine) -> None:
    """D-9: cost rates default to 0; durations are always recorded."""
    # Given a worker without cost rates
    with engine.worker():
        # When a 200 ms run executes
        handle = costed.trigger({})
        run = wait_for_status(handle.id, "COMPLETED")
    # Then its cost is 0 and its duration is recorded
    assert run.cost_in_cents == 0 and run.base_cost_in_cents == 0
    assert 200 <= run.duration_ms < 1000
