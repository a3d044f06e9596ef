"""The worker bootstep: on worker start, import the project's task packages, store this
worker's definitions (so other processes can trigger by id), release runs that waited for
them, and run the timer service thread until the worker stops."""

from __future__ import annotations

from typing import Any

from celery import bootsteps

from .._engine.engine import current_or_none
from .._engine.sync import sync_definitions
from .._engine.timers import TimerService


class TriggerBootstep(bootsteps.StartStopStep):
    """Worker blueprint step: timer service, task definition sync, pending promotion."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.service: TimerService | None = None

    def start(self, worker: Any) -> None:
        engine = current_or_none()
        if engine is None or engine.app is not worker.app:
            return
        engine.discover()
        sync_definitions(engine)
        if engine.settings.timer_service:
            self.service = TimerService(engine)
            self.service.start()

    def stop(self, worker: Any) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def terminate(self, worker: Any) -> None:
        self.stop(worker)

    def shutdown(self, worker: Any) -> None:
        self.stop(worker)
