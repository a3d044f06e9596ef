"""Building a run's ``Context`` from its record, and direct (inline) calls of a task.

The context is fixed for the attempt (SEMANTICS §1.8); ``run_inline`` gives a direct call
``my_task(payload)`` a local context so run functions behave the same outside a worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from .._serialization import loads
from ..context import (
    AttemptInfo,
    BatchInfo,
    Context,
    EnvironmentInfo,
    MachineInfo,
    QueueInfo,
    RunInfo,
    TaskInfo,
    _current,
)
from ..options import MACHINE_PRESETS
from ..result import ms_to_dt
from .clock import now_ms
from .engine import Engine
from .registry import TaskSpec
from .state import Journal


def build_context(
    engine: Engine, defn: TaskSpec | None, rec: Mapping[str, str], journal: Journal | None = None
) -> Context:
    machine = MACHINE_PRESETS[rec.get("machine") or engine.config.machine]
    rates = engine.settings.cost_rates
    cents_per_ms = (
        machine.cpu * rates.get("vcpu_second", 0.0) + machine.memory * rates.get("gb_second", 0.0)
    ) / 1000
    base_cost = float(rates.get("run", 0.0))
    if engine.settings.environment == "DEVELOPMENT":
        cents_per_ms = base_cost = 0.0  # development runs are free (D-9)
    tags = tuple(loads(rec.get("tags")) or ())
    started = int(rec.get("attempt_started") or now_ms())
    return Context(
        task=TaskInfo(id=rec["task"], file_path=getattr(defn, "__module__", "") or ""),
        run=RunInfo(
            id=rec["id"],
            tags=tags,
            is_test=rec.get("is_test") == "1",
            is_replay=rec.get("is_replay") == "1",
            created_at=ms_to_dt(rec.get("created")),
            started_at=ms_to_dt(rec.get("started")),
            idempotency_key=rec.get("idem") or None,
            max_attempts=int(rec.get("max_attempts") or 1),
            max_duration=int(rec["max_duration"]) if rec.get("max_duration") else None,
            priority=(int(rec.get("priority") or 0) / 1000) or None,
            parent_task_run_id=rec.get("parent") or None,
            root_task_run_id=rec.get("root") or None,
            base_cost_in_cents=base_cost,
            version=rec.get("version") or None,
            region=rec.get("region") or None,
            cost_in_cents=float(rec.get("cost") or 0),
            duration_ms=int(float(rec.get("duration_ms") or 0)),
        ),
        attempt=AttemptInfo(
            number=int(rec.get("attempt") or 1),
            started_at=datetime.fromtimestamp(started / 1000, tz=timezone.utc),
        ),
        queue=QueueInfo(name=rec.get("queue", "")),
        machine=MachineInfo(
            name=machine.name, cpu=machine.cpu, memory=machine.memory, cents_per_ms=cents_per_ms
        ),
        environment=EnvironmentInfo(type=engine.settings.environment),
        batch=BatchInfo(rec["batch"]) if rec.get("batch") else None,
        project=engine.config.project,
        _journal=journal,
    )


def run_inline(defn: TaskSpec, payload: Any) -> Any:
    """A direct call ``my_task(payload)``: run the function here with a local context."""
    parsed = defn.parse_payload(payload)
    stamp = now_ms()
    machine = MACHINE_PRESETS[defn.machine or "small-1x"]
    ctx = Context(
        task=TaskInfo(id=defn.id, file_path=defn.__module__),
        run=RunInfo(
            id=f"run_local_{uuid.uuid4().hex[:14]}",
            created_at=datetime.fromtimestamp(stamp / 1000, tz=timezone.utc),
        ),
        attempt=AttemptInfo(
            number=1, started_at=datetime.fromtimestamp(stamp / 1000, tz=timezone.utc)
        ),
        queue=QueueInfo(name=defn.queue.name if defn.queue else f"task/{defn.id}"),
        machine=MachineInfo(name=machine.name, cpu=machine.cpu, memory=machine.memory),
        environment=EnvironmentInfo(type="DEVELOPMENT"),
    )
    args: tuple[Any, ...] = (parsed, ctx) if defn.takes_ctx else (parsed,)
    kwargs: dict[str, Any] = {"init": {}} if defn.takes_init else {}
    if defn.is_async:

        async def _with_ctx() -> Any:
            token = _current.set(ctx)
            try:
                return await defn.fn(*args, **kwargs)
            finally:
                _current.reset(token)

        return _with_ctx()
    token = _current.set(ctx)
    try:
        return defn.fn(*args, **kwargs)
    finally:
        _current.reset(token)
