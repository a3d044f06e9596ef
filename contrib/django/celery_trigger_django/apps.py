"""The Django app: ``ready()`` wires celery-trigger into the project once per process.

Order in ``ready()``: install the on-commit deferral, connect the schedule mirror signals,
find the Celery app, put the derived secret key into its configuration when the project set
none, call ``celery_trigger.setup`` (unless the project already did for this app), then import
each installed app's ``tasks`` module so ``@ct.task`` definitions exist in web processes too.
A configuration problem does not stop Django from starting: it is kept on the app config and
reported by ``manage.py check`` (``checks.py``).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import logging
from typing import Any

from django.apps import AppConfig, apps

logger = logging.getLogger("celery_trigger_django")


class CeleryTriggerConfig(AppConfig):
    name = "celery_trigger_django"
    label = "celery_trigger_django"
    verbose_name = "Celery Trigger"
    default_auto_field = "django.db.models.AutoField"

    #: the project's Celery app once found; None when ``ready`` could not find it
    celery_app: Any = None
    #: why ``ready`` could not set celery-trigger up (reported by ``manage.py check``)
    setup_error: Exception | None = None

    def ready(self) -> None:
        from django.db import transaction

        from celery_trigger import _on_commit

        from . import checks, schedules

        checks.register()
        _on_commit.install(transaction.on_commit)
        schedules.connect_signals()
        try:
            self.celery_app = conf_app = _find_app()
        except LookupError as exc:
            self.setup_error = exc
            logger.warning("celery-trigger is not set up: %s", exc)
            return
        try:
            ensure_setup(conf_app)
        except Exception as exc:  # ConfigurationError, StoreUnavailableError: see checks
            self.setup_error = exc
            logger.warning("celery-trigger is not set up: %s", exc)
            return
        import_task_modules()


def _find_app() -> Any:
    from .conf import find_celery_app

    return find_celery_app()


def ensure_setup(app: Any) -> Any:
    """``ct.setup(app)`` unless the project already set this app up; the derived secret key
    applies either way when ``CELERY_TRIGGER_SECRET_KEY`` is not set. Returns the engine."""
    import celery_trigger as ct
    from celery_trigger._setup import current_or_none

    from .conf import derived_secret_key, secret_key_setting

    derived = None
    if secret_key_setting() is None and not app.conf.get("trigger_secret_key"):
        derived = derived_secret_key()
        app.conf.trigger_secret_key = derived
    engine = current_or_none()
    if engine is not None and engine.app is app:
        if derived is not None and not engine.settings.secret_key:
            engine.settings = dataclasses.replace(engine.settings, secret_key=derived)
        return engine
    return ct.setup(app)


def import_task_modules() -> list[str]:
    """Import ``<app>.tasks`` of every installed app (as Celery's autodiscovery does in
    workers), so task objects and their definitions exist in web processes too."""
    imported = []
    for config in apps.get_app_configs():
        name = f"{config.name}.tasks"
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            importlib.import_module(name)
            imported.append(name)
    return imported
