"""celery-trigger for Django projects: ``INSTALLED_APPS += ["celery_trigger_django"]``.

What the app adds (see ``docs/django.md``):

- ``apps.CeleryTriggerConfig.ready`` finds the project's Celery app, derives
  ``CELERY_TRIGGER_SECRET_KEY`` from ``SECRET_KEY`` when it is not set, calls
  ``celery_trigger.setup`` once and imports every installed app's ``tasks`` module;
- ``task.trigger_on_commit`` / ``ct.tasks.trigger_on_commit`` through
  ``django.db.transaction.on_commit``;
- ``manage.py check`` messages ``celery_trigger_django.E001``..``E004``;
- ``urls``: the waitpoint token endpoint and, under ASGI, the realtime SSE routes;
- ct schedules mirrored as django-celery-beat ``PeriodicTask`` rows, in both directions;
- admin pages for runs, waitpoint tokens and queues, read from the run store.

Importing this package has no side effects; everything happens in ``ready()``.
"""

from __future__ import annotations

__version__ = "0.1.0"
