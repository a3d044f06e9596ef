"""Which broker the integration and crash tests put Celery's messages on.

The environment variable ``CELERY_TRIGGER_TEST_BROKER`` picks one of three set-ups; the tests
marked ``brokers`` are run in each by ``.ci/run``:

- ``same`` (default): the broker is the store's own Redis database, so run messages are
  pushed by the store's scripts (direct enqueue);
- ``redis-db``: the broker is another database of the same Redis server: direct enqueue is
  off and every message goes through ``send_task``;
- ``rabbitmq``: RabbitMQ on 127.0.0.1:5672 (guest/guest), shared by everyone: each test uses
  its own queue names and deletes its queues afterwards.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import pytest

ENV = "CELERY_TRIGGER_TEST_BROKER"
KINDS = ("same", "redis-db", "rabbitmq")
RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672//"
#: the database the ``redis-db`` set-up puts the broker on (the store stays on 0)
BROKER_DB = 1


def kind() -> str:
    value = os.environ.get(ENV, "same") or "same"
    if value not in KINDS:
        raise pytest.UsageError(f"{ENV}={value!r}: expected one of {', '.join(KINDS)}")
    return value


def broker_url(redis_server: str) -> str:
    """The broker URL for a test app whose store is ``{redis_server}/0``."""
    chosen = kind()
    if chosen == "redis-db":
        return f"{redis_server}/{BROKER_DB}"
    if chosen == "rabbitmq":
        return RABBITMQ_URL
    return f"{redis_server}/0"


def delete_queues(app: Any, *queues: str) -> None:
    """Remove a test's broker queues (RabbitMQ queues outlive the test; Redis lists are
    deleted by the callers' key cleanup, but the broker may be another database)."""
    if kind() == "same":
        return
    with contextlib.suppress(Exception), app.connection_for_write() as conn:
        channel = conn.default_channel
        for queue in queues:
            with contextlib.suppress(Exception):
                channel.queue_delete(queue)


def wake_for_shutdown(worker: Any) -> None:
    """Ask an in-process test worker to stop and wake its event loop now.

    ``start_worker`` sets the stop flag and joins; the loop sees the flag only after its poll
    returns. On Redis the transport's own timers wake it often; on RabbitMQ (no heartbeat in
    test workers) the poll may sleep up to 10 s, longer than the join waits."""
    from celery.worker import state

    state.should_terminate = 0
    hub = getattr(worker, "hub", None)
    if hub is not None:
        hub.call_soon(lambda: None)
