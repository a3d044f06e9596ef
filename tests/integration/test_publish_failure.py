"""A broker that refuses a new run's message (issue 12 item 3): ``trigger`` raises a
``TriggerError`` subclass and the run it wrote never executes (marked SYSTEM_FAILURE)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from celery import Celery

import celery_trigger as ct
from celery_trigger import _setup


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_publish_failure_raises_a_trigger_error_and_leaves_no_run_to_execute(
    redis_server: str, key_prefix: str
) -> None:
    # Given a store that works and a broker nobody listens on
    app = Celery("pubfail", broker=f"redis://127.0.0.1:{_closed_port()}/0", set_as_current=False)
    app.conf.broker_connection_retry = False
    app.conf.broker_connection_max_retries = 0
    app.conf.task_publish_retry = False
    ct.setup(app, redis_url=f"{redis_server}/0", key_prefix=key_prefix,
             secret_key="test-secret-0123456789abcdef0123456789")  # fmt: skip
    try:
        task = ct.task(id=f"pub-{key_prefix}", run=lambda p: p)
        # When a trigger's publish fails
        with pytest.raises(ct.PublishError) as info:
            task.trigger({"x": 1}, idempotency_key="k1")
        assert isinstance(info.value, ct.TriggerError)
        # Then the run it wrote is failed, not waiting for the publish watchdog
        runs: Any = ct.runs.list(limit=10)
        statuses = [r.status for r in runs]
        assert statuses == [ct.RunStatus.SYSTEM_FAILURE]
    finally:
        _setup.reset()
