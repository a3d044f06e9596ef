"""``celery_trigger.testing``: the helpers the examples and users' tests rely on, embedded.

Each test gets its own embedded app (memory store, memory broker) with its own broker queue,
since the in-memory broker is shared by the whole process.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from celery import Celery

import celery_trigger as ct
from celery_trigger import _setup
from celery_trigger.testing import run_worker, wait_for_run


@ct.task(id="ex-double", retry={"max_attempts": 1})
def double(payload: dict, ctx: ct.Context) -> dict:
    return {"doubled": payload["n"] * 2, "run_id": ctx.run.id}


@pytest.fixture
def embedded_app() -> Iterator[Celery]:
    app = Celery(
        f"ex-{uuid.uuid4().hex[:8]}",
        broker="memory://localhost/",
        backend="cache+memory://",
        set_as_current=False,
    )
    app.conf.task_default_queue = f"ex-{uuid.uuid4().hex[:10]}"
    app.conf.worker_hijack_root_logger = False
    app.conf.broker_connection_retry_on_startup = True  # silences Celery 5.4
    app.conf.trigger_store = "memory"
    ct.setup(app)
    yield app
    _setup.reset()


def test_wait_for_run_returns_the_final_run_from_an_in_process_worker(embedded_app: Celery) -> None:
    """RUNS-1: run_worker executes triggered runs; wait_for_run returns them once final."""
    # Given an embedded app and its in-process worker
    with run_worker(embedded_app):
        # When a run is triggered and waited for
        run = wait_for_run(double.trigger({"n": 21}), timeout=10)
    # Then it is the completed run with the task's output
    assert run.status is ct.RunStatus.COMPLETED
    assert run.output == {"doubled": 42, "run_id": run.id}


def test_wait_for_run_waits_for_a_run_sent_with_plain_celery(embedded_app: Celery) -> None:
    """A plain ``.delay`` creates a run whose id is the Celery task id (API.md, Defining tasks)."""
    # Given a worker
    with run_worker(embedded_app):
        # When the underlying Celery task is sent with plain Celery
        result = double.celery_task.delay({"n": 5})
        # Then the run with the Celery task id completes, although it did not exist at first
        run = wait_for_run(result.id, timeout=10)
    assert run.status is ct.RunStatus.COMPLETED
    assert run.output == {"doubled": 10, "run_id": result.id}


def test_wait_for_run_times_out_naming_the_last_status(embedded_app: Celery) -> None:
    """wait_for_run raises TimeoutError with the run's status when nothing finishes it."""
    # Given a run and no worker
    handle = double.trigger({"n": 1})
    # When it is waited for briefly
    with pytest.raises(TimeoutError, match=rf"run {handle.id} is QUEUED after 0.2s"):
        wait_for_run(handle, timeout=0.2)
    # Then the run is untouched
    assert ct.runs.retrieve(handle.id).status is ct.RunStatus.QUEUED


def test_run_worker_refuses_an_app_without_setup() -> None:
    """run_worker needs ``ct.setup(app)``: without it no run could ever execute."""
    # Given an app that celery-trigger was never set up on
    app = Celery("ex-plain", broker="memory://localhost/", set_as_current=False)
    # When a worker is asked for, then the error says what to do
    with pytest.raises(ct.ConfigurationError, match=r"setup\(app\) before run_worker"):
        with run_worker(app):
            pass


def test_run_worker_refuses_a_process_pool_with_the_embedded_store(embedded_app: Celery) -> None:
    """The memory store lives in this process, so child-process pools cannot see it."""
    # When a prefork worker is asked for in embedded mode, then it is refused before starting
    with pytest.raises(ct.ConfigurationError, match="cannot see the embedded store"):
        with run_worker(embedded_app, pool="prefork"):
            pass
