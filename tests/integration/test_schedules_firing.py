"""Firing schedules through the timer service (SEMANTICS §10.2-10.3, D-8, D-12).

Two kinds of test: the fire handler called directly on a due schedule (duplicates, lateness,
early claims: no worker needed, every run stays QUEUED), and end to end with a real worker
whose timer service claims the ``sched|<id>`` timers while the schedule clock runs 60 to
3600 times faster than the wall clock (``schedule_clock``), so minutes and hours of
occurrences take seconds.
"""

# ruff: noqa: F811  (pytest fixtures imported from schedule_helpers)
from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

import celery_trigger as ct
from celery_trigger._engine import schedules as engine_schedules
from celery_trigger._store.base import schedule_timer
from tests.helpers import wait_for

from .conftest import Engine
from .schedule_helpers import at, define, schedule_clock  # noqa: F401  (fixtures)

# also run with the broker on another Redis database and on RabbitMQ (tests/brokers.py)
pytestmark = pytest.mark.brokers


def runs_of(task_id: str) -> list[ct.Run]:
    """The task's runs, oldest nominal time first."""
    return sorted(
        ct.runs.list(task_identifier=task_id, limit=100), key=lambda r: r.created_at or datetime.min
    )


def completed(task_id: str, n: int, timeout: float = 20.0) -> list[ct.Run]:
    def check() -> list[ct.Run] | None:
        done = [r for r in runs_of(task_id) if r.is_completed]
        return done if len(done) >= n else None

    return wait_for(check, timeout=timeout, message=f"fewer than {n} scheduled runs")


def fire(engine: Engine, schedule_id: str) -> None:
    engine_schedules.fire(engine.trigger, schedule_id)


# the fire handler -------------------------------------------------------------------------
def test_concurrent_and_repeated_fires_of_one_occurrence_create_one_run(
    engine: Engine, define: Callable[..., Any], schedule_clock: Callable[..., Any]
) -> None:
    """D-12, SCHED-12: an occurrence is keyed by (schedule, nominal time): a fire repeated
    after a crash and four workers firing at once create one run and advance once."""
    # Given an every-minute schedule whose 10:01 occurrence is due
    schedule_clock("2030-01-01T10:00:30")
    made = ct.schedules.create(task=define(), cron="* * * * *", deduplication_key="once")
    schedule_clock("2030-01-01T10:01:00.500")
    # When a worker triggered it and died before advancing it
    record = engine.store.get_schedule(made.id)
    nominal = engine_schedules.to_ms(at("2030-01-01T10:01:00"))
    engine_schedules._trigger_occurrence(
        engine.trigger, record, nominal, *engine_schedules.check_cron("* * * * *", "UTC")
    )
    # and four timer services then fire it at the same time
    threads = [threading.Thread(target=fire, args=(engine, made.id)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then exactly one run exists for it, created at the nominal time
    [run] = runs_of(made.task)
    assert run.created_at == at("2030-01-01T10:01:00")
    assert run.payload["timestamp"] == "2030-01-01T10:01:00+00:00"
    # and the schedule advanced once, to the following minute
    after = ct.schedules.retrieve(made.id)
    assert after.next_run == at("2030-01-01T10:02:00")
    assert engine.store.get_schedule(made.id)["last_run"] == str(nominal)


def test_a_late_fire_triggers_the_registered_occurrence_once_without_backfill(
    engine: Engine, define: Callable[..., Any], schedule_clock: Callable[..., Any]
) -> None:
    """§10.2 missed occurrences: after downtime the registered occurrence fires late once;
    the ones that passed meanwhile are skipped (no backfill)."""
    # Given an every-minute schedule registered for 10:01
    schedule_clock("2030-01-01T10:00:30")
    made = ct.schedules.create(task=define(), cron="* * * * *", deduplication_key="late")
    # When nothing ran until 10:07:20 and the timer is then handled
    schedule_clock("2030-01-01T10:07:20")
    fire(engine, made.id)
    # Then one run, for 10:01, exists and the next occurrence is 10:08
    assert [r.payload["timestamp"] for r in runs_of(made.task)] == ["2030-01-01T10:01:00+00:00"]
    assert ct.schedules.retrieve(made.id).next_run == at("2030-01-01T10:08:00")


def test_a_fire_claimed_before_its_time_is_re_armed_and_triggers_nothing(
    engine: Engine, define: Callable[..., Any], schedule_clock: Callable[..., Any]
) -> None:
    """D-12: runs fire at or after their nominal time, never before."""
    # Given a schedule due at 10:01 and the clock at 10:00:30
    clock = schedule_clock("2030-01-01T10:00:30")
    made = ct.schedules.create(task=define(), cron="* * * * *", deduplication_key="early")
    engine.store.remove_timers([schedule_timer(made.id)])
    # When its timer is handled early (a stale claim came back)
    fire(engine, made.id)
    # Then no run exists and the timer is armed again at the occurrence's wall time
    assert runs_of(made.task) == []
    due = clock.to_wall(engine_schedules.to_ms(at("2030-01-01T10:01:00")))
    assert engine.store.timer_due(schedule_timer(made.id)) == due


def test_a_deleted_schedule_fires_nothing(
    engine: Engine, define: Callable[..., Any], schedule_clock: Callable[..., Any]
) -> None:
    """§10.1 del: a timer of a deleted schedule triggers nothing and is not re-armed."""
    # Given a due schedule that is then deleted
    schedule_clock("2030-01-01T10:00:30")
    made = ct.schedules.create(task=define(), cron="* * * * *", deduplication_key="gone")
    ct.schedules.del_(made.id)
    schedule_clock("2030-01-01T10:05:00")
    # When its timer fires anyway
    fire(engine, made.id)
    # Then nothing runs and no timer is left
    assert runs_of(made.task) == []
    assert engine.store.timer_due(schedule_timer(made.id)) is None


# end to end -------------------------------------------------------------------------------
def test_declarative_schedule_fires_on_its_nominal_times_through_a_worker(
    engine: Engine, define: Callable[..., Any], schedule_clock: Callable[..., Any]
) -> None:
    """SCHED-1, SCHED-3, SCHED-4, D-8: "0 */2 * * *" synced at worker start fires on the
    even UTC hours; payloads carry the nominal timestamp, the previous one, UTC and 10
    increasing upcoming times."""
    # Given a declarative two-hourly task and a clock running an hour per second
    task = define(cron="0 */2 * * *")
    schedule_clock("2030-01-01T01:59:00", speed=7200)
    # When a worker starts (syncing the schedule) and three occurrences pass
    with engine.worker():
        runs = completed(task.id, 3)[:3]
    # Then each run got a ScheduledPayload for an even hour, two hours apart
    outputs = [r.output for r in runs]
    stamps = [datetime.fromisoformat(o["timestamp"]) for o in outputs]
    assert all(s.hour % 2 == 0 and (s.minute, s.second) == (0, 0) for s in stamps)
    assert [b - a for a, b in itertools.pairwise(stamps)] == [timedelta(hours=2)] * 2
    assert {(o["cls"], o["timezone"], o["type"]) for o in outputs} == {
        ("ScheduledPayload", "UTC", "DECLARATIVE")
    }
    assert {o["schedule_id"] for o in outputs} == {engine_schedules.declarative_id(task.id)}
    # the first has no last_timestamp, each next one the previous timestamp
    assert [o["last_timestamp"] for o in outputs] == [
        None,
        outputs[0]["timestamp"],
        outputs[1]["timestamp"],
    ]
    # upcoming: 10 strictly increasing times starting two hours after the timestamp
    for out, stamp in zip(outputs, stamps, strict=True):
        upcoming = [datetime.fromisoformat(u) for u in out["upcoming"]]
        assert len(upcoming) == 10 and upcoming[0] == stamp + timedelta(hours=2)
        assert all(a < b for a, b in itertools.pairwise(upcoming))
    # and the runs were created at their nominal times
    assert [r.created_at for r in runs] == stamps


def test_every_minute_schedule_pauses_while_deactivated_and_resumes_without_backfill(
    engine: Engine, define: Callable[..., Any], schedule_clock: Callable[..., Any]
) -> None:
    """SCHED-9, SCHED-2 (zone in the payload), SCHED-3: an imperative every-minute schedule
    in Asia/Tokyo fires through a worker; while deactivated it produces no runs; after
    activate it resumes at the next occurrence, and that run's last_timestamp is the last
    occurrence that triggered."""
    # Given an every-minute schedule for user u1 in Tokyo, a minute per second
    task = define()
    schedule_clock("2030-01-01T10:00:50", speed=120)
    made = ct.schedules.create(
        task=task,
        cron="* * * * *",
        timezone="Asia/Tokyo",
        external_id="u1",
        deduplication_key="u1-minutely",
    )
    with engine.worker():
        # When two occurrences fired
        first = completed(task.id, 2)
        # and it is deactivated, and the occurrence in flight (if any) has advanced
        paused_at = ct.schedules.deactivate(made.id).next_run
        assert paused_at is not None
        wait_for(lambda: ct.schedules.retrieve(made.id).next_run > paused_at)
        before = len(runs_of(task.id))
        # and three more occurrences pass while it is inactive
        wait_for(
            lambda: ct.schedules.retrieve(made.id).next_run >= paused_at + timedelta(minutes=4),
            timeout=20,
        )
        during = len(runs_of(task.id))
        resumed_from = ct.schedules.activate(made.id).next_run
        # and then it is activated again
        runs = completed(task.id, before + 1)
    # Then no run was created while it was inactive
    assert during == before
    last_before = runs[before - 1].output
    resumed = runs[before].output
    # the next run is the first occurrence after activation (no backfill)
    assert datetime.fromisoformat(resumed["timestamp"]) >= resumed_from
    # and its last_timestamp is the last occurrence that triggered a run
    assert resumed["last_timestamp"] == last_before["timestamp"]
    # and every payload carried the zone and external id
    assert {(r.output["timezone"], r.output["external_id"]) for r in runs} == {("Asia/Tokyo", "u1")}
    assert first[0].output["last_timestamp"] is None


def test_a_scheduled_task_triggered_by_hand_gets_a_scheduled_payload(
    engine: Engine, define: Callable[..., Any]
) -> None:
    """§10.1: a scheduled task's payload is a ScheduledPayload, also when it is triggered by
    hand (a test run); a payload that is not one fails at trigger time."""
    # Given a scheduled task and a worker
    task = define()
    payload = ct.schedules.ScheduledPayload(
        timestamp=at("2030-01-01T09:00:00"),
        last_timestamp=None,
        timezone="UTC",
        schedule_id="sched_manual",
        external_id="u9",
        upcoming=[at("2030-01-02T09:00:00")],
    )
    with engine.worker():
        # When it is triggered with a ScheduledPayload
        run = ct.runs.poll(task.trigger(payload), poll_interval_ms=20)
    # Then the run received it as one
    assert run.status is ct.RunStatus.COMPLETED, run.error
    assert (run.output["cls"], run.output["timestamp"], run.output["external_id"]) == (
        "ScheduledPayload",
        "2030-01-01T09:00:00+00:00",
        "u9",
    )
    # and a payload of another shape is refused before anything is written
    with pytest.raises(ct.PayloadValidationError, match="not a scheduled task payload"):
        task.trigger({"hello": "world"})
    assert len(runs_of(task.id)) == 1
