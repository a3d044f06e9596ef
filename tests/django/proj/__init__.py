"""A Django project in the standard Celery layout, for the celery-trigger-django tests."""

from .celery import app as celery_app

__all__ = ["celery_app"]
