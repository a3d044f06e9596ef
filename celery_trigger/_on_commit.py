"""Triggers deferred to the end of a database transaction (``trigger_on_commit``).

The core knows no database. A framework integration installs a *deferral function* with
``install`` (the Django app installs ``django.db.transaction.on_commit``); without one,
``trigger_on_commit`` raises ``ConfigurationError``.

Invariant: nothing is written to the store when ``trigger_on_commit`` is called (the
trigger is validated then, so bad input raises at the call); the trigger happens only if
and when the deferral function calls back (a rolled-back transaction never
calls back, so it triggers nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import _handles
from ._engine.engine import current
from ._engine.prepare import prepare
from ._engine.registry import TaskSpec
from .errors import ConfigurationError

Defer = Callable[[Callable[[], None]], None]

_defer: Defer | None = None


def install(defer: Defer) -> None:
    """Make ``defer(fn)`` the way ``trigger_on_commit`` postpones its trigger."""
    global _defer
    _defer = defer


def uninstall() -> None:
    """Forget the deferral function (tests)."""
    global _defer
    _defer = None


def trigger_on_commit(
    task_id: str, payload: Any, options: Mapping[str, Any], *, definition: TaskSpec | None = None
) -> None:
    """Trigger ``task_id`` once the surrounding transaction commits (never on rollback)."""
    if _defer is None:
        raise ConfigurationError(
            [
                "trigger_on_commit needs a transaction integration: add "
                "'celery_trigger_django' to INSTALLED_APPS"
            ]
        )
    frozen = dict(options)
    # Bad input raises here, at the call, not at commit time; nothing is written.
    prepare(current(), task_id, payload, frozen, spec=definition)

    def fire() -> None:
        _handles.trigger(task_id, payload, frozen, definition=definition)

    _defer(fire)
