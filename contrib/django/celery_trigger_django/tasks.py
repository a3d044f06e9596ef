"""The Celery task that django-celery-beat sends for a celery-trigger schedule's row.

A ``PeriodicTask`` row mirroring a ct schedule names this task with
``kwargs={"schedule_id": ...}``. When ``celery beat`` (DatabaseScheduler) sends it, the
worker fires the schedule's *pending* occurrence through the core's own path: the run id
and idempotency key derive from (schedule, nominal time) and the schedule advances by
compare-and-set, so beat's send and the workers' timer service collapse into one run per
occurrence; a send that finds no occurrence due changes nothing.
"""

from __future__ import annotations

from celery import shared_task

FIRE_SCHEDULE = "celery_trigger_django.fire_schedule"


@shared_task(name=FIRE_SCHEDULE, ignore_result=True)
def fire_schedule(schedule_id: str) -> None:
    """Fire the due occurrence of ``schedule_id`` (if any). Sent by celery beat."""
    from celery_trigger._engine.schedules import fire
    from celery_trigger._setup import current

    fire(current(), schedule_id)
