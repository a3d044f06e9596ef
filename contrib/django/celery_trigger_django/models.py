"""Unmanaged models that give the store-backed admin pages a place in Django's admin.

They have no database table (``managed = False``) and are never queried: the admin views in
``admin_views.py`` read runs, waitpoint tokens and queues from the celery-trigger store
through its public API. They exist for the admin index entries and for Django's permissions:
``view_<model>`` lets a staff user see the pages, ``change_<model>`` lets them act (cancel,
replay, complete a token, pause or resume a queue).
"""

from __future__ import annotations

from django.db import models


class _StoreBacked(models.Model):
    id = models.CharField(primary_key=True, max_length=128)

    class Meta:
        abstract = True
        managed = False
        default_permissions = ("view", "change")


class Run(_StoreBacked):
    class Meta(_StoreBacked.Meta):
        verbose_name = "run"
        verbose_name_plural = "runs"


class WaitpointToken(_StoreBacked):
    class Meta(_StoreBacked.Meta):
        verbose_name = "waitpoint token"
        verbose_name_plural = "waitpoint tokens"


class Queue(_StoreBacked):
    class Meta(_StoreBacked.Meta):
        verbose_name = "queue"
        verbose_name_plural = "queues"
