"""celery-trigger schedules and django-celery-beat: rows mirror schedules, edits flow back,
and with a real ``celery beat`` (DatabaseScheduler) every occurrence still fires once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

import celery_trigger as ct
from celery_trigger._engine import schedules as engine_schedules
from tests.django.conftest import CtApp
from tests.django.helpers import ROOT, project_env
from tests.helpers import wait_for

PERIODIC = "/admin/django_celery_beat/periodictask/"


def _rows() -> dict[str, Any]:
    from celery_trigger_django.schedules import schedule_id_of
    from django_celery_beat.models import PeriodicTask

    return {
        sid: row
        for row in PeriodicTask.objects.select_related("crontab")
        if (sid := schedule_id_of(row))
    }


def _declare(ctapp: CtApp) -> None:
    """Declarative schedules are written when a worker starts, as in production."""
    with ctapp.worker():
        pass


def test_schedules_appear_as_periodic_tasks_with_crontab_and_timezone(
    ctapp: CtApp, staff_client: Any
) -> None:
    """DJ-4: declarative and imperative schedules are PeriodicTask rows (synced on visit)."""
    _declare(ctapp)
    imperative = ct.schedules.create(
        task="dj-nightly", cron="15 3 * * 1-5", timezone="America/New_York", deduplication_key="u1"
    )
    declarative = ct.schedules.retrieve(engine_schedules.declarative_id("dj-declared"))
    # When the periodic task admin is opened
    page = staff_client(superuser=True).get(PERIODIC)
    assert page.status_code == 200
    rows = _rows()
    # Then each schedule has a row with its pattern, zone and state
    row = rows[imperative.id]
    crontab = row.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_month) == ("15", "3", "*")
    assert (crontab.month_of_year, crontab.day_of_week) == ("*", "1-5")
    assert str(crontab.timezone) == "America/New_York"
    assert row.enabled and "dj-nightly" in row.name
    assert str(rows[declarative.id].crontab.timezone) == "Europe/Paris"
    assert "declarative" in rows[declarative.id].description
    assert imperative.id in page.content.decode()


def test_row_edits_change_the_ct_schedule(ctapp: CtApp) -> None:
    """DJ-4: cron, timezone, enabled and delete on the row change the ct schedule."""
    from celery_trigger_django.schedules import sync
    from django_celery_beat.models import CrontabSchedule

    schedule = ct.schedules.create(task="dj-nightly", cron="0 8 * * *", deduplication_key="u2")
    sync()
    row = _rows()[schedule.id]
    # cron and time zone: another crontab
    row.crontab = CrontabSchedule.objects.create(
        minute="30",
        hour="9",
        day_of_month="*",
        month_of_year="*",
        day_of_week="*",
        timezone="Asia/Tokyo",
    )
    row.save()
    changed = ct.schedules.retrieve(schedule.id)
    assert (changed.cron, changed.timezone) == ("30 9 * * *", "Asia/Tokyo")
    # an edit of the crontab row itself
    crontab = row.crontab
    crontab.hour = "10"
    crontab.save()
    assert ct.schedules.retrieve(schedule.id).cron == "30 10 * * *"
    # enabled
    row.enabled = False
    row.save()
    assert ct.schedules.retrieve(schedule.id).active is False
    row.enabled = True
    row.save()
    assert ct.schedules.retrieve(schedule.id).active is True
    # delete
    row.delete()
    with pytest.raises(ct.ScheduleNotFoundError):
        ct.schedules.retrieve(schedule.id)


def test_creating_a_periodic_task_in_the_admin_creates_a_ct_schedule(
    ctapp: CtApp, staff_client: Any
) -> None:
    """DJ-4: a PeriodicTask added in the admin for a ct.schedules.task becomes a schedule."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    client = staff_client(superuser=True)
    crontab = CrontabSchedule.objects.create(
        minute="0",
        hour="6",
        day_of_month="*",
        month_of_year="*",
        day_of_week="*",
        timezone="Europe/London",
    )
    data = {
        "name": "morning digest",
        "regtask": "dj-nightly",
        "task": "",
        "enabled": "on",
        "description": "",
        "crontab": str(crontab.pk),
        "args": "[]",
        "kwargs": json.dumps({"external_id": "user-9"}),
        "headers": "{}",
        "expire_seconds": "",
        "priority": "",
        "queue": "",
        "exchange": "",
        "routing_key": "",
        "start_time_0": "",
        "start_time_1": "",
        "last_run_at_0": "",
        "last_run_at_1": "",
        "expires_0": "",
        "expires_1": "",
    }
    response = client.post(f"{PERIODIC}add/", data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    row = PeriodicTask.objects.get(name="morning digest")
    (sid,) = [s for s, r in _rows().items() if r.pk == row.pk]
    schedule = ct.schedules.retrieve(sid)
    assert (schedule.task, schedule.cron, schedule.timezone) == (
        "dj-nightly",
        "0 6 * * *",
        "Europe/London",
    )
    assert schedule.external_id == "user-9"
    # and a crontab ct refuses is a form error, not a half-made schedule
    bad = CrontabSchedule.objects.create(
        minute="99", hour="6", day_of_month="*", month_of_year="*", day_of_week="*"
    )
    response = client.post(f"{PERIODIC}add/", {**data, "name": "bad", "crontab": str(bad.pk)})
    assert response.status_code == 200
    assert "celery-trigger refuses this crontab" in response.content.decode()
    assert not PeriodicTask.objects.filter(name="bad").exists()


def test_declarative_rows_are_read_only_in_the_admin(ctapp: CtApp, staff_client: Any) -> None:
    """DJ-4: a declarative schedule lives in code; its row cannot be edited or deleted."""
    from celery_trigger_django.schedules import sync

    _declare(ctapp)
    sync()
    sid = engine_schedules.declarative_id("dj-declared")
    row = _rows()[sid]
    client = staff_client(superuser=True)
    page = client.get(f"{PERIODIC}{row.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.post(f"{PERIODIC}{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert ct.schedules.retrieve(sid).type == "DECLARATIVE"


# --- a real celery beat process ---------------------------------------------------------
@pytest.fixture
def fired_bridges() -> Iterator[list[str]]:
    """Schedule ids of the beat-sent bridge tasks this process's worker has run."""
    from celery import signals
    from celery_trigger_django.tasks import FIRE_SCHEDULE

    seen: list[str] = []

    def record(sender: Any = None, kwargs: Any = None, **_: Any) -> None:
        if getattr(sender, "name", None) == FIRE_SCHEDULE:
            seen.append((kwargs or {}).get("schedule_id", ""))

    signals.task_postrun.connect(record, weak=False)
    yield seen
    signals.task_postrun.disconnect(record)


@pytest.fixture
def beat(ctapp: CtApp, django_project: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """Start ``celery -A tests.django.proj beat -S django_celery_beat...DatabaseScheduler``."""
    from django.db import connection

    procs: list[subprocess.Popen[bytes]] = []
    env = project_env(
        django_project,
        CT_DJANGO_KEY_PREFIX=ctapp.prefix,
        CT_DJANGO_DB_NAME=connection.settings_dict["NAME"],
    )
    log = tmp_path / "beat.log"

    def start() -> subprocess.Popen[bytes]:
        command = [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "tests.django.proj",
            "beat",
            "--loglevel",
            "INFO",
            "-S",
            "django_celery_beat.schedulers:DatabaseScheduler",
            "--pidfile",
            "",
        ]
        with log.open("ab") as out:
            proc = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print(log.read_text() if log.exists() else "")


def _due_now(sid: str) -> None:
    """Make beat consider the row due at once (it last ran two minutes ago)."""
    from django_celery_beat.models import PeriodicTask

    row = _rows()[sid]
    PeriodicTask.objects.filter(pk=row.pk).update(
        last_run_at=datetime.now(timezone.utc) - timedelta(minutes=2)
    )


def _clock_due_in(seconds: float) -> int:
    """Shift schedule time so that its next minute boundary is ``seconds`` of wall time away;
    returns that boundary (ms)."""
    wall = int(time.time() * 1000)
    boundary = (wall // 60_000 + 2) * 60_000
    offset = boundary - int(seconds * 1000) - wall
    engine_schedules.set_clock(engine_schedules.Clock(offset_ms=offset))
    return boundary


@pytest.fixture
def schedule_clock() -> Iterator[None]:
    yield
    engine_schedules.set_clock(None)


def _occurrence_runs(sid: str) -> list[ct.Run]:
    return [
        r
        for r in ct.runs.list(task_identifier="dj-nightly", limit=100)
        if r.payload["schedule_id"] == sid
    ]


@pytest.mark.slow
def test_beat_alone_fires_the_occurrence_once(
    ctapp: CtApp, beat: Any, fired_bridges: list[str], schedule_clock: None
) -> None:
    """DJ-4: with no timer service, beat's send of the row fires the pending occurrence."""
    from celery_trigger_django.schedules import sync

    # Given workers without the timer service (only beat can fire) and a ct schedule
    ct.setup(ctapp.app, key_prefix=ctapp.prefix, timer_service=False)
    schedule = ct.schedules.create(task="dj-nightly", cron="* * * * *", deduplication_key="b1")
    nominal = schedule.next_run
    assert nominal is not None
    engine_schedules.set_clock(engine_schedules.Clock(offset_ms=61_000))  # it is due now
    sync()
    _due_now(schedule.id)
    with ctapp.worker():
        # When celery beat (DatabaseScheduler) runs and sends the row
        proc = beat()
        wait_for(lambda: schedule.id in fired_bridges, timeout=60, message="beat sent nothing")
        runs = _occurrence_runs(schedule.id)
    # Then the occurrence ran exactly once, as the (schedule, nominal time) run
    assert proc.poll() is None
    assert [r.payload["timestamp"] for r in runs] == [nominal.isoformat()]
    assert runs[0].id == engine_schedules.occurrence_run_id(
        _instance(ctapp, schedule.id), int(nominal.timestamp() * 1000)
    )


@pytest.mark.slow
def test_beat_and_timer_service_together_fire_each_occurrence_once(
    ctapp: CtApp, beat: Any, fired_bridges: list[str], schedule_clock: None
) -> None:
    """DJ-4: beat's send and the workers' timer service collapse into one run."""
    from celery_trigger_django.schedules import sync

    # Given a schedule whose occurrence is due in about 3 s, mirrored for beat, which will
    # send it as soon as it starts (about the same moment)
    boundary = _clock_due_in(3.0)
    schedule = ct.schedules.create(task="dj-nightly", cron="* * * * *", deduplication_key="b2")
    assert schedule.next_run is not None
    assert int(schedule.next_run.timestamp() * 1000) == boundary
    sync()
    _due_now(schedule.id)
    with ctapp.worker():
        # When both the timer service and beat fire
        beat()
        wait_for(lambda: schedule.id in fired_bridges, timeout=60, message="beat sent nothing")
        runs = wait_for(lambda: _occurrence_runs(schedule.id), timeout=15)
        wait_for(lambda: ct.schedules.retrieve(schedule.id).next_run != schedule.next_run)
        runs = _occurrence_runs(schedule.id)
    # Then the occurrence exists once
    assert [r.payload["timestamp"] for r in runs] == [schedule.next_run.isoformat()]


@pytest.mark.slow
def test_plain_periodic_tasks_keep_running_through_beat(ctapp: CtApp, beat: Any) -> None:
    """DJ-4: rows of plain Celery tasks are left alone and beat keeps sending them."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    from tests.django.testapp.tasks import PLAIN_TICKS

    every = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(
        name="plain tick", task="dj-plain-tick", interval=every, args=json.dumps([ctapp.prefix])
    )
    row = PeriodicTask.objects.get(name="plain tick")
    assert row.task == "dj-plain-tick"  # not turned into a ct schedule
    with ctapp.worker():
        beat()
        wait_for(lambda: PLAIN_TICKS.count(ctapp.prefix) >= 2, timeout=60)


def _instance(ctapp: CtApp, schedule_id: str) -> str:
    record = ctapp.trigger.store.get_schedule(schedule_id)
    return str(record.get("instance") or schedule_id)
