"""The schedules API on a real Redis store (SEMANTICS §10.1-10.3): create/upsert, retrieve,
list, update, activate/deactivate, del_, timezones, declarative sync, and validation with
nothing written. Firing is in ``test_schedules_firing.py``.
"""

# ruff: noqa: F811  (pytest fixtures imported from schedule_helpers)
from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

import celery_trigger as ct
from celery_trigger._engine import schedules as engine_schedules
from celery_trigger._serialization import dumps
from celery_trigger.schedules import Schedule, ScheduleNotFoundError

from .conftest import Engine
from .schedule_helpers import at, define, schedule_clock  # noqa: F401  (fixtures)

START = "2030-01-01T10:00:30"


def count() -> int:
    return ct.schedules.list().pagination.count


@pytest.fixture
def fixed_now(schedule_clock: Callable[..., Any]) -> None:
    schedule_clock(START, speed=1.0)


def test_create_returns_the_schedule_with_every_field(
    engine: Engine, define: Callable[..., Any], fixed_now: None
) -> None:
    """§10.1 ScheduleObject: id sched_, type, task, active, cron, description, timezone,
    external id, deduplication key, next run, environments."""
    # Given a scheduled task
    reminder = define()
    # When a schedule is created for it
    created = ct.schedules.create(
        task=reminder,
        cron="0 9 * * *",
        timezone="Asia/Tokyo",
        external_id="user-1",
        deduplication_key="reminder-user-1",
    )
    # Then every field is set, and retrieve returns the same object
    assert created.id.startswith("sched_")
    assert (created.type, created.task, created.active) == ("IMPERATIVE", reminder.id, True)
    assert (created.cron, created.description) == ("0 9 * * *", "At 09:00")
    assert (created.timezone, created.external_id) == ("Asia/Tokyo", "user-1")
    assert created.deduplication_key == "reminder-user-1"
    assert created.next_run == at("2030-01-02T00:00:00")  # 09:00 in Tokyo
    assert created.environments == ["PRODUCTION"]
    assert ct.schedules.retrieve(created.id) == created


def test_create_with_the_same_deduplication_key_updates_that_schedule(
    engine: Engine, define: Callable[..., Any], fixed_now: None
) -> None:
    """SCHED-5: two creates with one key give one id; the second cron is in effect."""
    # Given a schedule created with a deduplication key
    task = define()
    first = ct.schedules.create(task=task.id, cron="0 9 * * *", deduplication_key="k1")
    # When it is created again with another cron and zone
    second = ct.schedules.create(
        task=task.id, cron="*/5 * * * *", deduplication_key="k1", timezone="Europe/London"
    )
    # Then it is the same schedule with the new cron, zone and next run
    assert second.id == first.id and count() == 1
    assert (second.cron, second.timezone) == ("*/5 * * * *", "Europe/London")
    assert second.next_run == at("2030-01-01T10:05:00")
    assert ct.schedules.retrieve(first.id).cron == "*/5 * * * *"


@pytest.mark.parametrize(
    ("cron", "tz", "message"),
    [
        ("0 0 0 * * *", "UTC", "CRON expressions with seconds are not allowed"),
        ("61 * * * *", "UTC", "out of range"),
        ("0 9 * * *", "Mars/Base", "Invalid timezone 'Mars/Base'"),
        ("", "UTC", "CRON expression is required"),
    ],
)
def test_bad_cron_or_timezone_fails_at_the_call_with_nothing_written(
    engine: Engine, define: Callable[..., Any], cron: str, tz: str, message: str
) -> None:
    """SCHED-6: six fields, a value out of range, an unknown zone fail; nothing is stored."""
    # Given a scheduled task
    task = define()
    # When a schedule with a bad cron or zone is created
    with pytest.raises(ValueError, match=message):
        ct.schedules.create(task=task, cron=cron, timezone=tz, deduplication_key="bad")
    # Then no schedule exists
    assert count() == 0


def test_only_scheduled_tasks_can_be_scheduled(engine: Engine) -> None:
    """SCHED-13: a plain task fails with "… is not a scheduled task"; an unknown task with
    TaskNotFoundError; nothing is written."""

    # Given a plain task
    @ct.task(id="sched-api-plain-task")
    def plain(payload: dict[str, Any]) -> None:
        return None

    # When schedules are created for it and for an unknown task
    with pytest.raises(ValueError, match="'sched-api-plain-task' is not a scheduled task"):
        ct.schedules.create(task=plain, cron="* * * * *", deduplication_key="p")
    with pytest.raises(ct.TaskNotFoundError, match="no-such-task"):
        ct.schedules.create(task="no-such-task", cron="* * * * *", deduplication_key="q")
    # Then nothing was written
    assert count() == 0


def test_tasks_known_from_a_workers_definitions_are_checked_too(engine: Engine) -> None:
    """SCHED-13: a process that does not import the task checks the stored definitions."""
    # Given definitions stored by a worker of another codebase
    engine.store.put_task_defs(
        {
            "remote-scheduled": dumps({"scheduled": True}),
            "remote-plain": dumps({"scheduled": False}),
        }
    )
    # When schedules are created for both
    made = ct.schedules.create(task="remote-scheduled", cron="@daily", deduplication_key="r")
    with pytest.raises(ValueError, match="is not a scheduled task"):
        ct.schedules.create(task="remote-plain", cron="@daily", deduplication_key="s")
    # Then only the scheduled task's schedule exists
    assert made.task == "remote-scheduled" and count() == 1


def test_update_changes_only_what_it_is_given(
    engine: Engine, define: Callable[..., Any], fixed_now: None
) -> None:
    """SCHED-10 as changed by issue 15: update keeps the fields it is not given (task
    optional, validated when given, never changed); ``external_id=None`` clears it."""
    # Given a schedule in Europe/London for external id u1
    task, other = define(), define()
    made = ct.schedules.create(
        task=task,
        cron="0 9 * * *",
        timezone="Europe/London",
        external_id="u1",
        deduplication_key="u1",
    )
    # When only its cron is updated (no task)
    updated = ct.schedules.update(made.id, cron="30 10 * * *")
    # Then the zone and external id stay, the cron and next run are new
    assert (updated.timezone, updated.external_id) == ("Europe/London", "u1")
    assert (updated.cron, updated.task) == ("30 10 * * *", task.id)
    assert updated.next_run == at("2030-01-01T10:30:00")
    assert updated.deduplication_key == "u1"
    # When the seed's fields are given: the task is validated but kept, the zone changes
    again = ct.schedules.update(
        made.id, task=other, timezone="UTC", external_id=None, deduplication_key="u1"
    )
    assert (again.timezone, again.external_id, again.task) == ("UTC", None, task.id)
    assert again.cron == "30 10 * * *"
    # and a bad update changes nothing
    with pytest.raises(ValueError, match="seconds"):
        ct.schedules.update(made.id, task=task, cron="* * * * * *")
    with pytest.raises(ValueError, match="deduplication_key"):
        ct.schedules.update(made.id, deduplication_key="other")
    assert ct.schedules.retrieve(made.id) == again


def test_deactivate_and_activate_flip_active_only(
    engine: Engine, define: Callable[..., Any], fixed_now: None
) -> None:
    """SCHED-9 (API side): deactivate/activate change ``active`` and keep the occurrence."""
    # Given an active schedule
    made = ct.schedules.create(task=define(), cron="*/10 * * * *", deduplication_key="a")
    # When it is deactivated, then activated
    off = ct.schedules.deactivate(made.id)
    on = ct.schedules.activate(made.id)
    # Then active follows, and next_run did not move
    assert (off.active, on.active) == (False, True)
    assert off.next_run == on.next_run == made.next_run


def test_delete_then_retrieve_raises_not_found(engine: Engine, define: Callable[..., Any]) -> None:
    """§10.1 del: returns {id}; the schedule is gone; every call on it raises."""
    # Given a schedule
    made = ct.schedules.create(task=define(), cron="@hourly", deduplication_key="d")
    # When it is deleted
    assert ct.schedules.del_(made.id) == {"id": made.id}
    # Then retrieve, update, activate and delete raise ScheduleNotFoundError
    for call in (
        lambda: ct.schedules.retrieve(made.id),
        lambda: ct.schedules.update(made.id, task=made.task, cron="@daily"),
        lambda: ct.schedules.activate(made.id),
        lambda: ct.schedules.del_(made.id),
    ):
        with pytest.raises(ScheduleNotFoundError):
            call()
    assert count() == 0


def test_list_pages_schedules(engine: Engine, define: Callable[..., Any]) -> None:
    """§10.1 list: offset pages (default 20, max 100) with currentPage/totalPages/count."""
    # Given three schedules
    task = define()
    made = [
        ct.schedules.create(task=task, cron="@daily", deduplication_key=f"k{i}") for i in range(3)
    ]
    # When they are listed two per page
    first, second = (ct.schedules.list(page=p, per_page=2) for p in (1, 2))
    # Then the pages hold them in creation order with the pagination
    assert [s.id for s in first] + [s.id for s in second] == [s.id for s in made]
    assert (
        second.pagination.current_page,
        second.pagination.total_pages,
        second.pagination.count,
    ) == (2, 2, 3)
    assert all(isinstance(s, Schedule) for s in first.data) and len(first) == 2
    for bad in ({"page": 0}, {"per_page": 101}, {"per_page": 0}):
        with pytest.raises(ValueError):
            ct.schedules.list(**bad)
    with pytest.raises(TypeError):
        ct.schedules.list(page="1")  # type: ignore[arg-type]


def test_timezones_lists_iana_names(engine: Engine) -> None:
    """§10.1 timezones: {timezones: [...]}, sorted, with or without UTC."""
    # Given the zone database
    # When the zones are listed with and without UTC
    every = ct.schedules.timezones()["timezones"]
    no_utc = ct.schedules.timezones(exclude_utc=True)["timezones"]
    # Then both are sorted IANA names and only the second lacks UTC
    assert "UTC" in every and "UTC" not in no_utc
    assert {"Asia/Tokyo", "America/New_York", "Europe/London"} <= set(no_utc)
    assert every == sorted(every) and "Mars/Base" not in every


def test_declarative_schedules_cannot_be_changed_through_the_api_but_resync_updates_them(
    engine: Engine, define: Callable[..., Any], fixed_now: None
) -> None:
    """SCHED-11: update/delete/activate of a declarative schedule fail; changing the cron in
    code and syncing again updates it."""
    # Given a declarative schedule synced from code
    task = define(cron={"pattern": "0 * * * *", "timezone": "Europe/Paris"})
    engine_schedules.sync_declarative(engine.trigger)
    [synced] = ct.schedules.list().data
    assert (synced.type, synced.task, synced.cron) == ("DECLARATIVE", task.id, "0 * * * *")
    assert synced.deduplication_key is None and synced.next_run == at("2030-01-01T11:00:00")
    # When the API tries to change it
    for call in (
        lambda: ct.schedules.update(synced.id, task=task, cron="@daily"),
        lambda: ct.schedules.del_(synced.id),
        lambda: ct.schedules.deactivate(synced.id),
    ):
        with pytest.raises(ValueError, match="declarative schedule"):
            call()
    # Then it is unchanged; and when the code changes its cron and syncs again, it follows
    assert ct.schedules.retrieve(synced.id) == synced
    ct.schedules.task(id=task.id, cron="*/15 * * * *", run=task.fn)
    engine_schedules.sync_declarative(engine.trigger)
    resynced = ct.schedules.retrieve(synced.id)
    assert (resynced.cron, resynced.timezone) == ("*/15 * * * *", "UTC")
    assert resynced.next_run == at("2030-01-01T10:15:00")


def test_declarative_sync_follows_the_environment(
    make_engine: Callable[..., Engine], define: Callable[..., Any], fixed_now: None
) -> None:
    """§10.1: a declarative schedule with environments syncs only where they include
    trigger_environment; a task whose cron no longer applies loses its schedule."""
    # Given a task scheduled for STAGING only
    task = define(cron={"pattern": "@daily", "environments": ["STAGING"]})
    # When a PRODUCTION and a STAGING engine sync
    production = make_engine()
    engine_schedules.sync_declarative(production.trigger)
    in_production = count()
    staging = make_engine(environment="STAGING")
    report = engine_schedules.sync_declarative(staging.trigger)
    # Then only STAGING has it
    assert in_production == 0
    assert len(report["created"]) == 1 and count() == 1
    assert ct.schedules.list().data[0].environments == ["STAGING"]
    # When the code drops the cron (the task stays defined) and STAGING syncs again
    ct.schedules.task(id=task.id, run=task.fn)
    report = engine_schedules.sync_declarative(staging.trigger)
    # Then the schedule is deleted
    assert len(report["deleted"]) == 1 and count() == 0


def test_declarative_cron_is_validated_at_definition(define: Callable[..., Any]) -> None:
    """SCHED-6 (declarative): a bad pattern, zone, key or environment fails where the task
    is defined."""
    # Given bad cron arguments
    bad: list[tuple[Any, type[Exception], str]] = [
        ("0 0 0 * * *", ValueError, "seconds"),
        ({"pattern": "@daily", "timezone": "Mars/Base"}, ValueError, "Invalid timezone"),
        ({"pattern": "@daily", "window": "5m"}, ValueError, "unknown cron key"),
        ({"pattern": "@daily", "environments": ["PROD"]}, ValueError, "environments"),
        ({"timezone": "UTC"}, ValueError, "pattern"),
        (42, TypeError, "cron must be"),
    ]
    for cron, error, message in bad:
        # When a scheduled task is defined with it
        # Then the definition fails
        with pytest.raises(error, match=message):
            define(cron=cron)
    with pytest.raises(TypeError, match="no schema"):
        define(schema=dict)


def test_next_run_is_the_first_occurrence_after_now(
    engine: Engine, define: Callable[..., Any], fixed_now: None
) -> None:
    """D-12: a new schedule's first occurrence is strictly after the current time."""
    # Given the clock at 10:00:30
    # When an every-minute schedule is created
    made = ct.schedules.create(task=define(), cron="* * * * *", deduplication_key="m")
    # Then its next run is 10:01, half a minute away
    assert made.next_run == at(START) + timedelta(seconds=30)
