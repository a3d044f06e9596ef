"""Fixtures for schedule tests: scheduled tasks defined per test, and the schedule clock.

Declarative schedules sync at every worker start of the process, so a test that defines one
at import time would leak it into every other test's worker: ``define`` creates tasks with
unique ids inside the test and removes them from both registries afterwards.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

import celery_trigger as ct
from celery_trigger import _definition
from celery_trigger._engine import schedules as engine_schedules
from celery_trigger._engine.schedules import Clock
from celery_trigger.schedules import ScheduledPayload


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def echo(payload: ScheduledPayload) -> dict[str, Any]:
    """A scheduled task body that returns what it received."""
    return {
        "cls": type(payload).__name__,
        "timestamp": payload.timestamp.isoformat(),
        "last_timestamp": payload.last_timestamp.isoformat() if payload.last_timestamp else None,
        "timezone": payload.timezone,
        "schedule_id": payload.schedule_id,
        "external_id": payload.external_id,
        "type": payload.type,
        "upcoming": [u.isoformat() for u in payload.upcoming],
    }


@pytest.fixture
def define() -> Iterator[Callable[..., Any]]:
    """``define(cron=None, run=echo, **options)`` → a new ``schedules.task`` (unique id)."""
    ids: list[str] = []

    def make(
        *, cron: Any = None, run: Callable[..., Any] = echo, prefix: str = "sched", **options: Any
    ) -> Any:
        task_id = f"{prefix}-{uuid.uuid4().hex[:8]}"
        ids.append(task_id)
        return ct.schedules.task(id=task_id, cron=cron, run=run, **options)

    yield make
    for task_id in ids:
        engine_schedules.forget(task_id)
        with _definition._lock:
            _definition._registry.pop(task_id, None)


@pytest.fixture
def schedule_clock() -> Iterator[Callable[..., Clock]]:
    """``schedule_clock("2030-01-01T00:00:00", speed=60)``: schedule time starts there now
    and runs ``speed`` times faster than the wall clock, until the test ends."""

    def install(start: str, speed: float = 1.0) -> Clock:
        wall = int(time.time() * 1000)
        clock = Clock(
            origin_ms=wall, offset_ms=engine_schedules.to_ms(at(start)) - wall, speed=speed
        )
        engine_schedules.set_clock(clock)
        return clock

    yield install
    engine_schedules.set_clock(None)
