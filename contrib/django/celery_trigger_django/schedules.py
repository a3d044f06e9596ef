"""celery-trigger schedules mirrored as django-celery-beat ``PeriodicTask`` rows.

Direction ct → rows (``sync``): every ct schedule, declarative or imperative, has one row
whose task is ``celery_trigger_django.fire_schedule`` with ``kwargs={"schedule_id": id}``,
a ``CrontabSchedule`` holding its pattern and time zone, and ``enabled`` = active. Rows of
schedules that no longer exist are deleted. ``sync`` runs when the periodic task admin is
opened, when ``celery beat`` starts, and from ``manage.py celery_trigger_sync``.

Direction rows → ct (signals): saving a mirrored row (admin or ORM) updates the imperative
schedule's cron and time zone and activates or deactivates it; deleting it deletes the
schedule; saving a row whose task is a ``ct.schedules.task`` creates an imperative schedule
(deduplication key ``django-celery-beat:<row pk>``) and turns the row into a mirrored one.
Declarative rows are read-only: their schedule lives in code.

Invariant: writes made by ``sync`` itself never echo back (a thread-local guard), and a row
that matches its schedule changes nothing (so beat's own saves of ``last_run_at`` are no-ops).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

import celery_trigger as ct

from .tasks import FIRE_SCHEDULE

logger = logging.getLogger("celery_trigger_django")

DECLARATIVE = "DECLARATIVE"
DEDUP_PREFIX = "django-celery-beat:"
_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
_local = threading.local()


@contextmanager
def _mirroring() -> Iterator[None]:
    _local.active = True
    try:
        yield
    finally:
        _local.active = False


def _is_mirroring() -> bool:
    return bool(getattr(_local, "active", False))


def normalize_cron(cron: str) -> str:
    """The five-field form of a pattern (aliases expanded, single spaces)."""
    text = " ".join(cron.split())
    return _ALIASES.get(text.lower(), text)


def crontab_fields(cron: str) -> dict[str, str]:
    """``CrontabSchedule`` field values for a ct pattern."""
    return dict(zip(_CRON_FIELDS, normalize_cron(cron).split(" "), strict=True))


def row_cron(crontab: Any) -> tuple[str, str]:
    """(pattern, time zone) of a ``CrontabSchedule``."""
    pattern = " ".join(str(getattr(crontab, f)) for f in _CRON_FIELDS)
    return normalize_cron(pattern), str(crontab.timezone)


def schedule_id_of(row: Any) -> str | None:
    """The ct schedule id a mirrored row stands for (None for other rows)."""
    if row.task != FIRE_SCHEDULE:
        return None
    try:
        value = json.loads(row.kwargs or "{}").get("schedule_id")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def all_schedules() -> list[ct.schedules.Schedule]:
    out: list[ct.schedules.Schedule] = []
    page = 1
    while True:
        result = ct.schedules.list(page=page, per_page=ct.schedules.MAX_PER_PAGE)
        out.extend(result.data)
        if page >= result.pagination.total_pages:
            return out
        page += 1


def _crontab_for(cron: str, tz: str) -> Any:
    from django_celery_beat.models import CrontabSchedule

    fields = crontab_fields(cron)
    found = CrontabSchedule.objects.filter(timezone=tz, **fields).order_by("pk").first()
    return found or CrontabSchedule.objects.create(timezone=tz, **fields)


def _unique_name(base: str) -> str:
    from django_celery_beat.models import PeriodicTask

    name, n = base[:200], 2
    while PeriodicTask.objects.filter(name=name).exists():
        name, n = f"{base[:190]} ({n})", n + 1
    return name


def sync() -> dict[str, list[str]]:
    """Make the ``PeriodicTask`` rows mirror the ct schedules; returns the ids by outcome."""
    from django_celery_beat.models import PeriodicTask

    report: dict[str, list[str]] = {"created": [], "updated": [], "deleted": []}
    schedules = all_schedules()
    rows = {
        sid: row
        for row in PeriodicTask.objects.filter(task=FIRE_SCHEDULE).select_related("crontab")
        if (sid := schedule_id_of(row)) is not None
    }
    with _mirroring(), transaction.atomic():
        for schedule in schedules:
            row = rows.pop(schedule.id, None)
            wanted = (normalize_cron(schedule.cron), schedule.timezone)
            if row is None:
                PeriodicTask.objects.create(
                    name=_unique_name(f"{schedule.task} [{schedule.id}]"),
                    task=FIRE_SCHEDULE,
                    kwargs=json.dumps({"schedule_id": schedule.id}),
                    crontab=_crontab_for(*wanted),
                    enabled=schedule.active,
                    description=_description(schedule),
                )
                report["created"].append(schedule.id)
            elif (
                row.crontab is None or row_cron(row.crontab) != wanted
            ) or row.enabled != schedule.active:
                row.crontab = _crontab_for(*wanted)
                row.interval = row.solar = row.clocked = None
                row.enabled = schedule.active
                row.save()
                report["updated"].append(schedule.id)
        for sid, row in rows.items():
            row.delete()
            report["deleted"].append(sid)
    return report


def _description(schedule: ct.schedules.Schedule) -> str:
    kind = "declarative (edit it in code)" if schedule.type == DECLARATIVE else "imperative"
    return f"celery-trigger {kind} schedule of task {schedule.task!r}: {schedule.description}"


def is_declarative_row(row: Any) -> bool:
    sid = schedule_id_of(row)
    if sid is None:
        return False
    try:
        return ct.schedules.retrieve(sid).type == DECLARATIVE
    except ct.ScheduleNotFoundError:
        return False


def push_row(row: Any) -> None:
    """Apply a mirrored row's cron, time zone and enabled flag to its ct schedule."""
    sid = schedule_id_of(row)
    if sid is None:
        return
    try:
        schedule = ct.schedules.retrieve(sid)
    except ct.ScheduleNotFoundError:
        return  # gone: the next sync deletes the row
    if row.crontab is None:
        raise ValueError(f"{row.name!r} mirrors a celery-trigger schedule: it needs a crontab")
    cron, tz = row_cron(row.crontab)
    if schedule.type == DECLARATIVE:
        if (cron, tz, row.enabled) != (
            normalize_cron(schedule.cron),
            schedule.timezone,
            schedule.active,
        ):
            raise ValueError(
                f"{row.name!r} is a declarative schedule: change its cron in code "
                "(ct.schedules.task(cron=...)) and let the workers sync it"
            )
        return
    if (cron, tz) != (normalize_cron(schedule.cron), schedule.timezone):
        ct.schedules.update(
            sid, task=schedule.task, cron=cron, timezone=tz, external_id=schedule.external_id
        )
    if row.enabled != schedule.active:
        (ct.schedules.activate if row.enabled else ct.schedules.deactivate)(sid)


def is_scheduled_task(task_id: str) -> bool:
    """True when ``task_id`` is a ``ct.schedules.task`` (here or in a worker's definitions)."""
    from celery_trigger._engine.schedules import check_task
    from celery_trigger._setup import current

    try:
        check_task(current(), task_id)
    except (ct.TaskNotFoundError, ValueError):
        return False
    return True


def adopt_row(row: Any) -> str | None:
    """A row created for a ``ct.schedules.task``: create its ct schedule and mirror it.
    Returns the schedule id, or None when the row is a plain periodic task."""
    if row.crontab is None or not is_scheduled_task(row.task):
        return None
    cron, tz = row_cron(row.crontab)
    try:
        extra = json.loads(row.kwargs or "{}")
    except ValueError:
        extra = {}
    external_id = extra.get("external_id") if isinstance(extra, dict) else None
    schedule = ct.schedules.create(
        task=row.task,
        cron=cron,
        timezone=tz,
        deduplication_key=f"{DEDUP_PREFIX}{row.pk}",
        external_id=None if external_id is None else str(external_id),
    )
    if not row.enabled:
        ct.schedules.deactivate(schedule.id)
    with _mirroring():
        row.description = row.description or _description(schedule)
        row.task = FIRE_SCHEDULE
        row.args = "[]"
        row.kwargs = json.dumps({"schedule_id": schedule.id})
        row.save()
    return schedule.id


# signal receivers ------------------------------------------------------------------------
def _on_task_saved(sender: Any, instance: Any, raw: bool = False, **_: Any) -> None:
    if raw or _is_mirroring():
        return
    try:
        if instance.task == FIRE_SCHEDULE:
            push_row(instance)
        else:
            adopt_row(instance)
    except ct.ConfigurationError:
        logger.warning("celery-trigger is not set up: %s not mirrored", instance.name)


def _on_task_deleted(sender: Any, instance: Any, **_: Any) -> None:
    sid = schedule_id_of(instance)
    if sid is None or _is_mirroring():
        return
    try:
        ct.schedules.del_(sid)
    except ct.ScheduleNotFoundError:
        pass
    except ValueError:
        logger.info("declarative schedule %s stays: the next sync restores its row", sid)


def _on_crontab_saved(sender: Any, instance: Any, raw: bool = False, **_: Any) -> None:
    if raw or _is_mirroring():
        return
    for row in instance.periodictask_set.filter(task=FIRE_SCHEDULE):
        push_row(row)


def _on_beat_init(**_: Any) -> None:
    try:
        report = sync()
    except Exception:
        logger.exception("celery-trigger: could not mirror schedules for celery beat")
    else:
        logger.info("celery-trigger schedules mirrored for beat: %s", report)


def connect_signals() -> None:
    """Connect the mirror's receivers (idempotent: fixed dispatch uids)."""
    from celery import signals
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    uid = "celery_trigger_django.schedules"
    post_save.connect(_on_task_saved, sender=PeriodicTask, dispatch_uid=f"{uid}.saved")
    post_delete.connect(_on_task_deleted, sender=PeriodicTask, dispatch_uid=f"{uid}.deleted")
    post_save.connect(_on_crontab_saved, sender=CrontabSchedule, dispatch_uid=f"{uid}.crontab")
    signals.beat_init.connect(_on_beat_init, weak=False, dispatch_uid=f"{uid}.beat")
