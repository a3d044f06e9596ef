"""Per-user reminders: a scheduled task plus the application code that schedules it.

Each user picks a time of day in their own time zone; the application calls
``set_reminder`` when they save the setting and ``stop_reminders`` when they opt out. The
deduplication key ``reminder:<user>`` makes ``set_reminder`` an upsert: saving again moves
the same schedule instead of adding a second one (keep ``schedule.id`` on the user to pause or
delete it later). No beat process is involved: every
worker's timer service fires due occurrences, each exactly once.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from celery import Celery

import celery_trigger as ct


@ct.schedules.task(id="send-reminder")
def send_reminder(payload: ct.schedules.ScheduledPayload) -> dict[str, Any]:
    """Send one user's daily reminder (here: return the message)."""
    local = payload.timestamp.astimezone(ZoneInfo(payload.timezone))
    return {
        "user": payload.external_id,
        "message": f"Good morning {payload.external_id}, time to plan your day!",
        "scheduled_for": payload.timestamp.isoformat(),
        "local_time": local.strftime("%H:%M %Z"),
        "previous": payload.last_timestamp.isoformat() if payload.last_timestamp else None,
    }


def set_reminder(
    user_id: str, *, hour: int, minute: int = 0, timezone: str = "UTC"
) -> ct.schedules.Schedule:
    """Create or move a user's daily reminder (application code, e.g. a settings view)."""
    return ct.schedules.create(
        task=send_reminder,
        cron=f"{minute} {hour} * * *",
        timezone=timezone,
        external_id=user_id,
        deduplication_key=f"reminder:{user_id}",
    )


def pause_reminders(schedule_id: str) -> None:
    """A user on holiday: no reminders until ``ct.schedules.activate(schedule_id)``."""
    ct.schedules.deactivate(schedule_id)


def stop_reminders(schedule_id: str) -> None:
    """A user who opted out: the schedule is deleted."""
    ct.schedules.del_(schedule_id)


def make_app(redis_url: str | None) -> Celery:
    """Embedded (memory store and broker) without a URL, else Redis for both."""
    if redis_url is None:
        app = Celery("reminders", broker="memory://localhost/", backend="cache+memory://")
        app.conf.trigger_store = "memory"
    else:
        app = Celery("reminders", broker=redis_url, backend=redis_url)
    ct.setup(app, timer_poll_interval=0.01)
    return app
