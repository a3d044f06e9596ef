"""Fixtures for the Celery compatibility tests (issue 11): one app factory over two brokers.

``broker`` is parametrized over the Redis broker (the session's private redis-server) and
RabbitMQ (127.0.0.1:5672, guest/guest; shared with other sessions, so every queue name is
unique to this test and deleted afterwards). RabbitMQ not answering skips these cases, and
fails them when ``CI`` is set. The result backend and the run store are always Redis.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from kombu import Connection

import celery_trigger as ct
from celery_trigger import _definition, _setup
from celery_trigger.status import RunStatus
from tests.helpers import (
    redis_client,
    wait_for,  # noqa: F401 - re-exported to the test modules
)
from tests.helpers import wait_for_status as _wait_for_status

RABBITMQ_URL = os.environ.get("CELERY_TRIGGER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
BROKERS = ("redis", "rabbitmq")


def _rabbitmq_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_status(run_id: str, *statuses: RunStatus | str, timeout: float = 20.0) -> ct.Run:
    """Wait until the run reaches one of ``statuses`` (default: any final status)."""
    return _wait_for_status(run_id, *statuses, timeout=timeout)  # type: ignore[no-any-return]


@dataclass
class Compat:
    """One app on one broker; ``trigger`` is None for the app without ``setup``."""

    app: Celery
    broker: str
    prefix: str
    queue: str
    redis_url: str
    trigger: Any = None
    queues: list[str] = field(default_factory=list)

    def queue_name(self, suffix: str) -> str:
        """A broker queue unique to this test (deleted afterwards)."""
        name = f"{self.queue}-{suffix}"
        self.queues.append(name)
        return name

    @contextlib.contextmanager
    def worker(self, queues: list[str] | None = None, concurrency: int = 4) -> Iterator[Any]:
        options: dict[str, Any] = {}
        if queues is not None:
            options["queues"] = queues
        with start_worker(
            self.app,
            pool="threads",
            concurrency=concurrency,
            perform_ping_check=False,
            shutdown_timeout=15.0,
            loglevel="WARNING",
            **options,
        ) as w:
            yield w

    def cleanup(self) -> None:
        names = [self.queue, *self.queues]
        if self.broker == "rabbitmq":
            with contextlib.suppress(Exception), Connection(RABBITMQ_URL) as conn:
                channel = conn.default_channel
                for name in names:
                    with contextlib.suppress(Exception):
                        channel.queue_delete(name)
        if self.trigger is not None and self.trigger.resolved:
            client = redis_client(self.trigger.store)
            keys = list(client.scan_iter(f"{self.prefix}:*", count=1000))
            for i in range(0, len(keys), 500):
                client.delete(*keys[i : i + 500])
            client.delete(*names)


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest, redis_server: str) -> str:
    """The broker URL of this case: the Redis broker or RabbitMQ."""
    if request.param == "rabbitmq":
        if not _rabbitmq_answers():
            if os.environ.get("CI"):
                pytest.fail("RabbitMQ is not answering on 127.0.0.1:5672 but CI is set")
            pytest.skip("RabbitMQ is not answering on 127.0.0.1:5672")
        return RABBITMQ_URL
    return f"{redis_server}/0"


def build_app(broker_url: str, redis_server: str, name: str | None = None) -> Compat:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    queue = f"q-{prefix}"
    app = Celery(
        name or f"compat-{prefix}",
        broker=broker_url,
        backend=f"{redis_server}/1",
        set_as_current=False,
    )
    app.conf.task_default_queue = queue
    app.conf.broker_connection_retry_on_startup = True
    app.conf.worker_hijack_root_logger = False
    app.conf.result_expires = 600
    kind = "rabbitmq" if broker_url.startswith("amqp") else "redis"
    return Compat(app, kind, prefix, queue, f"{redis_server}/0")


@pytest.fixture
def make_app(broker: str, redis_server: str) -> Iterator[Callable[..., Compat]]:
    """``make_app(setup=True, **overrides)``: an app on this case's broker."""
    created: list[Compat] = []

    def factory(setup: bool = True, **overrides: Any) -> Compat:
        compat = build_app(broker, redis_server)
        if setup:
            overrides.setdefault("key_prefix", compat.prefix)
            overrides.setdefault("timer_poll_interval", 0.02)
            overrides.setdefault("redis_url", compat.redis_url)
            compat.trigger = ct.setup(compat.app, **overrides)
        created.append(compat)
        return compat

    yield factory
    for compat in created:
        compat.cleanup()
    _setup.reset()


@pytest.fixture(autouse=True)
def _clean_global_hooks() -> Iterator[None]:
    yield
    _definition.global_hooks.clear()
