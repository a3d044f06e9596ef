"""The worker bootstep: on worker start, check celery-trigger's settings (a bad setting or a
non-Redis broker without ``trigger_redis_url`` stops the worker with a ``ConfigurationError``),
log the Celery settings celery-trigger changed, import the project's task packages, start
the presence service (definition sync and liveness; retried in the background while the
store is down, so plain tasks still run) and the timer service thread until the worker
stops."""

from __future__ import annotations

import logging
from typing import Any

from celery import bootsteps

from .._engine.engine import current_or_none
from .._engine.presence import Presence
from .._engine.timers import TimerService
from .versions import register, unregister, worker_version

logger = logging.getLogger("celery_trigger")

#: Broker-wide settings celery-trigger changed, per app (``note_changes``), logged at start.
_changes: dict[int, dict[str, Any]] = {}


def note_changes(app: Any, changes: dict[str, Any]) -> None:
    """Remember the settings celery-trigger changed on ``app`` (logged at worker start)."""
    if changes:
        _changes.setdefault(id(app), {}).update(changes)


class TriggerBootstep(bootsteps.StartStopStep):
    """Worker blueprint step: settings check, presence, timer service."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.service: TimerService | None = None
        self.presence: Presence | None = None

    def start(self, worker: Any) -> None:
        engine = current_or_none()
        if engine is None or engine.app is not worker.app:
            return
        settings = engine.settings  # resolved here: a ConfigurationError stops the worker
        changed = _changes.get(id(worker.app), {})
        logger.info(
            "celery-trigger: Celery settings changed: %s",
            ", ".join(f"{k}={v!r}" for k, v in sorted(changed.items())) or "none",
        )
        engine.discover()
        version = worker_version(worker)  # D-21: consumed queues and liveness at a version
        register(worker.hostname, version)
        self.presence = Presence(engine, served=list(worker.app.tasks), version=version)
        self.presence.start()
        if settings.timer_service:
            self.service = TimerService(engine)
            self.service.start()

    def stop(self, worker: Any) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None
        if self.presence is not None:
            self.presence.stop()
            self.presence = None
            unregister(worker.hostname)

    def terminate(self, worker: Any) -> None:
        self.stop(worker)

    def shutdown(self, worker: Any) -> None:
        self.stop(worker)
