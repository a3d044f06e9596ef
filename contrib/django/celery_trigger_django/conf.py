"""Where the Django app finds the project's Celery app, and the derived secret key.

Invariants: the settings are read from ``django.conf.settings`` only here; the derived key
is a pure function of ``SECRET_KEY`` (so the web process and the workers of one project
agree on it without configuration).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import os
from typing import Any

from django.conf import settings

#: The fixed label of the derived secret: HMAC-SHA256(key=SECRET_KEY, msg=SECRET_LABEL).
SECRET_LABEL = b"celery_trigger_django.secret_key"
#: The Celery namespace setting naming the app (``"proj.celery:app"``); optional.
APP_SETTING = "CELERY_TRIGGER_APP"
SECRET_SETTING = "CELERY_TRIGGER_SECRET_KEY"
MIN_SECRET_BYTES = 32


def derived_secret_key() -> str:
    """The default ``trigger_secret_key``: 64 hex characters derived from ``SECRET_KEY``.

    Example: ``hmac.new(SECRET_KEY.encode(), b"celery_trigger_django.secret_key",
    hashlib.sha256).hexdigest()``.
    """
    secret = str(getattr(settings, "SECRET_KEY", "") or "")
    return hmac.new(secret.encode(), SECRET_LABEL, hashlib.sha256).hexdigest()


def secret_key_setting() -> str | None:
    """``CELERY_TRIGGER_SECRET_KEY`` when the project sets it, else None."""
    value = getattr(settings, SECRET_SETTING, None)
    return None if value in (None, "") else str(value)


def _import_path(path: str) -> Any:
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def _is_user_app(app: Any) -> bool:
    from celery import _state

    return app is not None and app is not _state.default_app


def find_celery_app() -> Any:
    """The project's Celery app: ``CELERY_TRIGGER_APP`` (``"module:attr"``), else the
    current Celery app when the project created one, else ``app``/``celery_app`` of the
    ``celery`` module beside the settings module (``proj/celery.py``). Raises
    ``LookupError`` when there is none."""
    path = getattr(settings, APP_SETTING, None)
    if path:
        try:
            return _import_path(str(path))
        except (ImportError, AttributeError, ValueError) as exc:
            raise LookupError(f"{APP_SETTING} = {path!r} cannot be imported: {exc}") from exc
    from celery import current_app

    app = current_app._get_current_object()
    if _is_user_app(app):
        return app
    settings_module = os.environ.get("DJANGO_SETTINGS_MODULE", "")
    package = settings_module.rpartition(".")[0]
    if package:
        try:
            module = importlib.import_module(f"{package}.celery")
        except ImportError:
            module = None
        for name in ("app", "celery_app"):
            found = getattr(module, name, None)
            if found is not None:
                return found
    raise LookupError(
        "no Celery app found: create one in proj/celery.py (imported by proj/__init__.py) "
        f"or name it with {APP_SETTING} = 'proj.celery:app'"
    )
