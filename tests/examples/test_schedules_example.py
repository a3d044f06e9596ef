"""The per-user reminders example (examples/schedules) runs as a subprocess, embedded and on
Redis (SEMANTICS §10)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from celery import Celery

import celery_trigger as ct
from celery_trigger import _setup

from .conftest import ROOT, run_python

EXAMPLE = str(ROOT / "examples" / "schedules" / "run.py")
DB_SCHEDULES = 45  # a database of the private server no other test uses
OUTPUT = [
    "ada: At 08:30 in Europe/London, next 2030-01-07 08:30 UTC",
    "grace: At 09:00 in Europe/Paris, next 2030-01-07 08:00 UTC",
    "ada moved her reminder: same schedule True, At 08:15",
    "reminder for grace at 09:00 CET: Good morning grace, time to plan your day!",
    "reminder for ada at 08:15 GMT: Good morning ada, time to plan your day!",
    "schedules left: 1 (grace's active: False)",
]


@pytest.fixture
def reader(redis_server: str) -> Iterator[str]:
    """The example's Redis database, emptied before; an engine reading it afterwards."""
    url = f"{redis_server}/{DB_SCHEDULES}"
    redis.Redis.from_url(url).flushdb()
    yield url
    _setup.reset()


def test_reminders_fire_in_each_users_zone_without_redis() -> None:
    """SCHED-2, SCHED-5, SCHED-9, §10.1: imperative per-user schedules created from
    application code fire at each user's local time; a second save moves the same schedule."""
    # Given the reminders example
    # When it runs embedded
    out = run_python(EXAMPLE)
    # Then both reminders fired at their users' local times, once each
    assert out.splitlines() == ["mode: embedded", *OUTPUT]


def test_reminders_fire_on_redis_and_the_schedule_stays_in_redis(reader: str) -> None:
    """SCHED-5, SCHED-9: on Redis the same happens, and another process reads the paused
    schedule back from Redis."""
    # Given an empty Redis database
    # When the example runs against it
    out = run_python(EXAMPLE, "--redis", reader)
    # Then the output is the embedded one, and grace's paused schedule is stored in Redis
    assert out.splitlines() == ["mode: redis", *OUTPUT]
    ct.setup(Celery("reader", broker=reader, set_as_current=False))
    [left] = ct.schedules.list().data
    assert (left.external_id, left.active, left.cron) == ("grace", False, "0 9 * * *")
    reminders = list(ct.runs.list(task_identifier="send-reminder"))
    assert sorted(r.output["user"] for r in reminders) == ["ada", "grace"]
