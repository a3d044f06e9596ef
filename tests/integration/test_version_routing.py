"""Version routing (D-21, D-18): runs pinned to a version run only on workers serving it.

Two real in-process workers of the same app declare different versions (the worker option
``trigger_version``; the setting ``trigger_worker_version`` is its default).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker

import celery_trigger as ct
from celery_trigger.errors import ConfigurationError

from .conftest import Engine, wait_for, wait_for_status


@ct.task(id="ver-where")
def ver_where(payload: Any, ctx: ct.Context) -> dict[str, Any]:
    # the thread names of each worker's thread pool start with its executor's prefix
    return {"worker": threading.current_thread().name.rsplit("_", 1)[0], "version": ctx.run.version}


@ct.task(id="ver-parent")
def ver_parent(payload: Any, ctx: ct.Context) -> dict[str, Any]:
    child = ver_where.trigger_and_wait({})
    return {"child": child.unwrap(), "child_id": child.id}


@contextlib.contextmanager
def versioned_worker(engine: Engine, version: str | None) -> Iterator[str]:
    """A real worker serving ``version``; yields the name its pool threads start with (Celery
    keeps one hostname per process, so tasks cannot tell two in-process workers apart by
    it). Two workers of one process cannot share kombu's event loop (one per process): each
    drains its own connection."""
    hostname = f"v{version}-{uuid.uuid4().hex[:6]}@test"
    kwargs: dict[str, Any] = {"hostname": hostname, "use_eventloop": False}
    if version is not None:
        kwargs["trigger_version"] = version
    with start_worker(
        engine.app,
        pool="threads",
        concurrency=2,
        perform_ping_check=False,
        shutdown_timeout=10.0,
        loglevel="WARNING",
        **kwargs,
    ) as worker:
        yield str(worker.pool.executor._thread_name_prefix)


def test_pinned_runs_run_only_on_a_worker_of_their_version(engine: Engine) -> None:
    """D-21: with workers of versions 1 and 2 live, every run pinned to 2 runs on the
    version-2 worker; unpinned runs still run anywhere."""
    with versioned_worker(engine, "1") as one, versioned_worker(engine, "2") as two:
        # When six runs are pinned to version 2
        handles = [ver_where.trigger({"n": i}, version="2") for i in range(6)]
        free = ver_where.trigger({})
        runs = [wait_for_status(h.id, "COMPLETED") for h in handles]
        # Then each ran on the version-2 worker, and ctx.run.version says so
        assert {r.output["worker"] for r in runs} == {two}
        assert {r.output["version"] for r in runs} == {"2"}
        assert {r.version for r in runs} == {"2"}
        # And an unpinned run runs on either
        assert wait_for_status(free.id, "COMPLETED").output["worker"] in {one, two}


def test_a_run_pinned_to_a_version_no_worker_serves_waits_for_one(engine: Engine) -> None:
    """D-21, D-18: a run pinned to version 3 while only version 1 is live is PENDING_VERSION
    (the live worker does not take it); when a version-3 worker starts, it runs there."""
    with versioned_worker(engine, "1"):
        # Given only a version-1 worker
        handle = ver_where.trigger({}, version="3")
        control = ver_where.trigger({}, version="1")
        # Then the version-1 run completes and the version-3 one waits
        wait_for_status(control.id, "COMPLETED")
        assert ct.runs.retrieve(handle.id).status is ct.RunStatus.PENDING_VERSION
        # When a version-3 worker starts
        with versioned_worker(engine, "3") as three:
            run = wait_for_status(handle.id, "COMPLETED")
    # Then the run ran on it
    assert run.output == {"worker": three, "version": "3"}


def test_a_worker_of_another_version_does_not_claim_a_pinned_message(engine: Engine) -> None:
    """D-21: a pinned run's message that reaches a worker of another version (here: sent by
    hand to the plain queue) is not claimed there; the run is published again, routed to
    its version, and runs on a worker serving it."""
    with versioned_worker(engine, "1") as one:
        # Given a version-1 worker and a run pinned to version 2 (PENDING_VERSION)
        handle = ver_where.trigger({}, version="2")
        assert ct.runs.retrieve(handle.id).status is ct.RunStatus.PENDING_VERSION
        with versioned_worker(engine, "2") as two:
            # When a copy of its message goes to the plain queue the version-1 worker reads
            engine.app.send_task(
                "ver-where", task_id=handle.id, headers={"ct_run": 1, "ct_version": "2"}
            )
            run = wait_for_status(handle.id, "COMPLETED")
    # Then it ran on the version-2 worker only
    assert run.output["worker"] == two != one
    assert run.attempt_count == 1


def test_children_keep_the_parent_version_and_replays_keep_version_and_region(
    engine: Engine,
) -> None:
    """D-21: a child triggered inside a run pinned to a version is pinned to it too (upstream
    locks children to the parent's version); ``runs.replay`` keeps version and region."""
    with versioned_worker(engine, "1"), versioned_worker(engine, "2") as two:
        # When a parent pinned to version 2 triggers a child without a version
        parent = ver_parent.trigger({}, version="2", region="eu-west-1")
        run = wait_for_status(parent.id, "COMPLETED")
        # Then the child is pinned to version 2 and ran on that worker
        child = ct.runs.retrieve(run.output["child_id"])
        assert child.version == "2" and run.output["child"]["worker"] == two
        # When the parent is replayed
        replay = ct.runs.replay(parent.id)
        again = wait_for(lambda: ct.runs.retrieve(replay.id).version)
        # Then the replay keeps version and region
        replayed = ct.runs.retrieve(replay.id)
        assert (again, replayed.region) == ("2", "eu-west-1")
        assert wait_for_status(replay.id, "COMPLETED").output["child"]["worker"] == two


def test_the_worker_version_setting_is_validated(make_engine: Any) -> None:
    """D-21: ``trigger_worker_version`` must be a non-empty string."""
    with pytest.raises(ConfigurationError, match="trigger_worker_version"):
        make_engine(worker_version="")
