"""Admin registrations: runs, waitpoint tokens and queues (store-backed, ``admin_views``),
and django-celery-beat's periodic task admin extended for celery-trigger schedules.

List ``celery_trigger_django`` after ``django_celery_beat`` in ``INSTALLED_APPS``: this
module replaces the ``PeriodicTask`` admin that django-celery-beat registers.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django_celery_beat.admin import PeriodicTaskAdmin, PeriodicTaskForm
from django_celery_beat.models import PeriodicTask

from . import schedules
from .admin_views import QueueAdmin, RunAdmin, WaitpointTokenAdmin
from .models import Queue, Run, WaitpointToken

admin.site.register(Run, RunAdmin)
admin.site.register(WaitpointToken, WaitpointTokenAdmin)
admin.site.register(Queue, QueueAdmin)


class TriggerPeriodicTaskForm(PeriodicTaskForm):  # type: ignore[misc]
    """Checks a crontab against celery-trigger's cron dialect when the row is (or will
    become) a celery-trigger schedule, so a bad pattern is a form error, not a failed save."""

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean()
        task = data.get("regtask") or data.get("task")
        crontab = data.get("crontab")
        mirrored = task == schedules.FIRE_SCHEDULE or (
            isinstance(task, str) and task and schedules.is_scheduled_task(task)
        )
        if mirrored and crontab is None:
            raise forms.ValidationError("A celery-trigger schedule needs a crontab schedule.")
        if mirrored:
            from celery_trigger._engine.schedules import check_cron

            cron, tz = schedules.row_cron(crontab)
            try:
                check_cron(cron, tz)
            except (ValueError, TypeError) as exc:
                raise forms.ValidationError(f"celery-trigger refuses this crontab: {exc}") from exc
        return data


class TriggerPeriodicTaskAdmin(PeriodicTaskAdmin):  # type: ignore[misc]
    """django-celery-beat's admin, showing celery-trigger schedules (synced on every visit)
    and keeping declarative ones read-only."""

    form = TriggerPeriodicTaskForm

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        _sync_quietly(request)
        return super().changelist_view(request, extra_context)  # type: ignore[no-any-return]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and schedules.is_declarative_row(obj):
            return False
        return super().has_change_permission(request, obj)  # type: ignore[no-any-return]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and schedules.is_declarative_row(obj):
            return False
        return super().has_delete_permission(request, obj)  # type: ignore[no-any-return]


def _sync_quietly(request: HttpRequest) -> None:
    from django.contrib import messages

    import celery_trigger as ct

    try:
        schedules.sync()
    except (ct.StoreUnavailableError, ct.ConfigurationError) as exc:
        messages.warning(request, f"celery-trigger schedules not refreshed: {exc}")


if admin.site.is_registered(PeriodicTask):
    admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, TriggerPeriodicTaskAdmin)
