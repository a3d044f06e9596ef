"""Fixtures for tests against a real Redis and a real in-process Celery worker.

``engine`` is a Celery app with ``celery_trigger.setup`` applied, its own key prefix and its
own broker queue (on the broker ``tests/brokers.py`` picks); ``worker`` starts a real
``start_worker`` (threads pool) for it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker

import celery_trigger as ct
from celery_trigger import _definition, _setup
from celery_trigger.status import RunStatus
from tests import brokers
from tests.helpers import (
    redis_client,
    wait_for,  # noqa: F401 - re-exported to the test modules
)
from tests.helpers import wait_for_status as _wait_for_status


def wait_for_status(run_id: str, *statuses: RunStatus | str, timeout: float = 15.0) -> ct.Run:
    """Wait until the run reaches one of ``statuses`` (default: any final status)."""
    return _wait_for_status(run_id, *statuses, timeout=timeout)  # type: ignore[no-any-return]


class Engine:
    """A configured app plus helpers; created by the ``make_engine`` fixture."""

    def __init__(self, app: Celery, trigger: ct.Trigger, prefix: str, queue: str) -> None:
        self.app = app
        self.trigger = trigger
        self.prefix = prefix
        self.queue = queue

    @property
    def store(self) -> Any:
        return self.trigger.store

    @contextlib.contextmanager
    def worker(self, concurrency: int = 4, pool: str = "threads", **options: Any) -> Iterator[Any]:
        """A real worker; ``options`` are worker options (e.g. ``trigger_version``, D-21)."""
        with start_worker(
            self.app,
            pool=pool,
            concurrency=concurrency,
            perform_ping_check=False,
            shutdown_timeout=10.0,
            loglevel="WARNING",
            **options,
        ) as w:
            try:
                yield w
            finally:
                brokers.wake_for_shutdown(w)

    def cleanup(self) -> None:
        client = redis_client(self.trigger.store)
        if hasattr(client, "scan_iter"):
            keys = list(client.scan_iter(f"{self.prefix}:*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
            client.delete(self.queue)
        brokers.delete_queues(self.app, self.queue)


@pytest.fixture
def make_engine(redis_server: str) -> Iterator[Callable[..., Engine]]:
    created: list[Engine] = []

    def factory(**overrides: Any) -> Engine:
        prefix = f"t{uuid.uuid4().hex[:10]}"
        queue = f"q-{prefix}"
        app = Celery(
            f"test-{prefix}",
            broker=brokers.broker_url(redis_server),
            backend=f"{redis_server}/0",
            set_as_current=False,
        )
        app.conf.task_default_queue = queue
        app.conf.broker_connection_retry_on_startup = True
        app.conf.worker_hijack_root_logger = False
        overrides.setdefault("key_prefix", prefix)
        if brokers.kind() != "same":  # the store stays on db 0, the broker is elsewhere
            overrides.setdefault("redis_url", f"{redis_server}/0")
        overrides.setdefault("timer_poll_interval", 0.02)
        overrides.setdefault("secret_key", "test-secret-0123456789abcdef0123456789")
        trigger = ct.setup(app, **overrides)
        engine = Engine(app, trigger, prefix, queue)
        created.append(engine)
        return engine

    yield factory
    for engine in created:
        engine.cleanup()
    _setup.reset()


@pytest.fixture
def engine(make_engine: Callable[..., Engine]) -> Engine:
    return make_engine()


@pytest.fixture(autouse=True)
def _clean_global_hooks() -> Iterator[None]:
    yield
    _definition.global_hooks.clear()
