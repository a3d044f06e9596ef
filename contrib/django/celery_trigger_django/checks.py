"""``manage.py check`` messages for celery-trigger's configuration.

| id | level | when |
|---|---|---|
| ``celery_trigger_django.E001`` | Error | no Celery app found |
| ``celery_trigger_django.E002`` | Error | the run store (Redis) does not answer |
| ``celery_trigger_django.E003`` | Error | ``CELERY_TRIGGER_SECRET_KEY`` shorter than 32 bytes |
| ``celery_trigger_django.E004`` | Error | any other problem ``celery_trigger.setup`` reported |

Silence one with ``SILENCED_SYSTEM_CHECKS`` (e.g. ``E002`` where Redis is down on purpose).
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core import checks

from .conf import MIN_SECRET_BYTES, SECRET_SETTING, secret_key_setting

TAG = "celery_trigger"


def _config() -> Any:
    return apps.get_app_config("celery_trigger_django")


def check_configuration(app_configs: Any = None, **_: Any) -> list[checks.CheckMessage]:
    """E001, E003 and E004: the Celery app, the secret key, the rest of the settings."""
    from celery_trigger import ConfigurationError

    messages: list[checks.CheckMessage] = []
    secret = secret_key_setting()
    if secret is not None and len(secret.encode()) < MIN_SECRET_BYTES:
        messages.append(
            checks.Error(
                f"{SECRET_SETTING} is {len(secret.encode())} bytes long; it signs tokens and "
                f"must be at least {MIN_SECRET_BYTES} bytes.",
                hint=f"Use a longer random value, or remove {SECRET_SETTING} to derive one "
                "from SECRET_KEY.",
                id="celery_trigger_django.E003",
            )
        )
    error = _config().setup_error
    if isinstance(error, LookupError):
        messages.append(
            checks.Error(
                str(error),
                hint="Use the standard layout: proj/celery.py with "
                "app.config_from_object('django.conf:settings', namespace='CELERY').",
                id="celery_trigger_django.E001",
            )
        )
    elif isinstance(error, ConfigurationError):
        others = [p for p in error.problems if "secret_key" not in p]
        if others:
            messages.append(
                checks.Error(
                    "celery-trigger settings are invalid: " + "; ".join(others),
                    hint="See docs/configuration.md (CELERY_TRIGGER_* settings).",
                    id="celery_trigger_django.E004",
                )
            )
    elif error is not None:
        messages.append(
            checks.Error(f"celery_trigger.setup failed: {error}", id="celery_trigger_django.E004")
        )
    return messages


def check_store(app_configs: Any = None, **_: Any) -> list[checks.CheckMessage]:
    """E002: the store answers a read."""
    import celery_trigger as ct

    if _config().setup_error is not None:
        return []  # reported by check_configuration
    try:
        ct.runs.list(limit=1)
    except ct.StoreUnavailableError as exc:
        return [
            checks.Error(
                f"the celery-trigger run store is unreachable: {exc}",
                hint="Check CELERY_TRIGGER_REDIS_URL (default: CELERY_BROKER_URL) and that "
                "Redis is running.",
                id="celery_trigger_django.E002",
            )
        ]
    except ct.ConfigurationError as exc:
        # Settings are resolved on first use: a problem found here is reported once, under
        # its own id (E003 for the secret key, by check_configuration).
        others = [p for p in exc.problems if "secret_key" not in p]
        if others:
            return [
                checks.Error(
                    "celery-trigger settings are invalid: " + "; ".join(others),
                    id="celery_trigger_django.E004",
                )
            ]
    return []


def register() -> None:
    """Register the checks (called from ``ready``; registering twice is harmless)."""
    checks.register(check_configuration, TAG)
    checks.register(check_store, TAG)
