"""Helpers for users' tests and for the embedded mode: an in-process worker, waiting for runs.

``run_worker`` runs a real Celery worker (``celery.contrib.testing.worker.start_worker``) in a
thread of this process for as long as a ``with`` block lasts; its bootstep starts the timer
service like any worker's. ``wait_for_run`` polls ``runs.retrieve`` until a run is final.

Example::

    app = Celery("proj", broker="memory://localhost/", backend="cache+memory://")
    app.conf.trigger_store = "memory"
    ct.setup(app)

    with run_worker(app):
        handle = my_task.trigger({"x": 1})
        run = wait_for_run(handle, timeout=10)
    assert run.status is ct.RunStatus.COMPLETED

Invariants: this is the only module of the package that imports ``celery.contrib.testing``
(and nothing imports it implicitly: ``import celery_trigger`` does not load it); neither
helper changes the app's configuration.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

from celery import Celery
from celery.contrib.testing.worker import start_worker
from celery.worker.worker import WorkController

from . import runs
from ._engine.engine import current_or_none
from .errors import ConfigurationError, RunNotFoundError
from .result import Run, RunHandle

#: How long ``wait_for_run`` waits by default, in seconds.
DEFAULT_WAIT_TIMEOUT_S = 10.0
#: Pause between two ``runs.retrieve`` calls of ``wait_for_run``, in seconds.
DEFAULT_POLL_INTERVAL_S = 0.02
#: Pools whose tasks run in this process, so they see an embedded (memory) store.
IN_PROCESS_POOLS = frozenset({"threads", "solo", "gevent", "eventlet"})
#: Pause between two wake-up broadcasts to a stopping worker on a polling broker, in seconds.
NUDGE_INTERVAL_S = 0.05

logger = logging.getLogger("celery_trigger")


@contextlib.contextmanager
def run_worker(
    app: Celery,
    *,
    concurrency: int = 2,
    pool: str = "threads",
    loglevel: str = "WARNING",
    shutdown_timeout: float = 10.0,
    **worker_options: Any,
) -> Iterator[WorkController]:
    """Run a real Celery worker for ``app`` in this process while the block executes.

    The worker consumes the app's default queue (pass ``queues=[...]`` for others), runs the
    celery-trigger bootstep (timer service: delayed runs, long retries, TTLs) and stops when
    the block exits; a task still running after ``shutdown_timeout`` seconds makes the exit
    raise ``RuntimeError``. ``ct.setup(app)`` must have been called first.

    Example::

        with run_worker(app, concurrency=4):
            run = wait_for_run(my_task.trigger({"x": 1}))
    """
    engine = current_or_none()
    if engine is None or engine.app is not app:
        raise ConfigurationError(["call celery_trigger.setup(app) before run_worker(app)"])
    if engine.settings.store == "memory" and pool not in IN_PROCESS_POOLS:
        raise ConfigurationError(
            [
                f"pool {pool!r} runs tasks in other processes, which cannot see the embedded "
                f"store (trigger_store='memory'); use one of {', '.join(sorted(IN_PROCESS_POOLS))}"
            ]
        )
    stop_nudging = threading.Event()
    nudger: threading.Thread | None = None
    try:
        # No ping check: it needs the celery.ping test task registered on the app.
        with start_worker(
            app,
            concurrency=concurrency,
            pool=pool,
            loglevel=loglevel,
            perform_ping_check=False,
            shutdown_timeout=shutdown_timeout,
            **worker_options,
        ) as worker:
            try:
                yield worker
            finally:
                if _polls_broker(app):
                    nudger = threading.Thread(
                        target=_nudge,
                        args=(app, getattr(worker, "hostname", None), stop_nudging),
                        name="celery-trigger-stop-nudger",
                        daemon=True,
                    )
                    nudger.start()
    finally:
        stop_nudging.set()
        if nudger is not None:
            nudger.join()


def _polls_broker(app: Celery) -> bool:
    """True for brokers whose worker loop blocks in a polling drain (Celery's ``synloop``)."""
    return str(app.conf.broker_url or "").startswith("memory://")


def _nudge(app: Celery, hostname: str | None, stop: threading.Event) -> None:
    """Wake a stopping worker's polling loop with no-op broadcasts until it has stopped.

    A worker on a polling broker checks its stop flag only between two 2-second drains (and
    runs one more drain after it is set); a control message ends a drain early, so the stop
    takes a fraction of a second instead of up to four.
    """
    while not stop.wait(NUDGE_INTERVAL_S):
        try:
            app.control.broadcast("ping", reply=False, destination=[hostname] if hostname else None)
        except Exception:  # the broker is closing too: the worker stops on its own
            logger.debug("celery-trigger: stop nudge not sent", exc_info=True)


def wait_for_run(
    run: str | RunHandle | Run,
    *,
    timeout: float = DEFAULT_WAIT_TIMEOUT_S,
    poll_interval: float = DEFAULT_POLL_INTERVAL_S,
) -> Run:
    """Poll ``runs.retrieve`` until the run reaches a final status and return it.

    A run id that does not exist yet counts as "not final": a run sent with plain Celery
    (``.delay``) gets its record when a worker receives the message. Raises ``TimeoutError``
    after ``timeout`` seconds, naming the run's last status.

    Example::

        run = wait_for_run(handle, timeout=5)
        assert run.is_success, run.error
    """
    run_id = run if isinstance(run, str) else run.id
    deadline = time.monotonic() + timeout
    last = "not found"
    while True:
        try:
            current = runs.retrieve(run_id)
        except RunNotFoundError:
            current = None
        if current is not None:
            if current.is_completed:
                return current
            last = current.status.value
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"run {run_id} is {last} after {timeout}s; "
                "is a worker running (run_worker) for its queue?"
            )
        time.sleep(poll_interval)


__all__ = ["run_worker", "wait_for_run"]
