"""``manage.py celery_trigger_sync``: mirror celery-trigger schedules as PeriodicTask rows."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from ... import schedules


class Command(BaseCommand):
    help = "Mirror celery-trigger schedules as django-celery-beat PeriodicTask rows."

    def handle(self, *args: Any, **options: Any) -> None:
        report = schedules.sync()
        for outcome, ids in report.items():
            self.stdout.write(f"{outcome}: {len(ids)}" + (f" ({', '.join(ids)})" if ids else ""))
