"""The runs API (SEMANTICS §11): retrieve, list, cancel, replay, reschedule, poll (D-6)."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import celery_trigger as ct
from celery_trigger._engine.timers import TimerService
from tests.helpers import redis_client

from .conftest import Engine, wait_for, wait_for_status

_lock = threading.Lock()
seen_replay: dict[str, bool] = {}


@ct.task(id="rapi-echo")
def rapi_echo(payload: Any, ctx: ct.Context) -> dict[str, Any]:
    with _lock:
        seen_replay[ctx.run.id] = ctx.run.is_replay
    return {"echo": payload}


@ct.task(id="rapi-boom", retry={"max_attempts": 2, "min_timeout_in_ms": 20, "randomize": False})
def rapi_boom(payload: Any, ctx: ct.Context) -> None:
    raise ValueError(f"boom {ctx.attempt.number}")


@ct.task(id="rapi-parent")
def rapi_parent(payload: Any) -> str:
    return rapi_echo.trigger({"child": True}).id


@ct.task(
    id="rapi-spawner", retry={"max_attempts": 3, "min_timeout_in_ms": 60_000, "randomize": False}
)
def rapi_spawner(payload: Any) -> None:
    """Fires a delayed child and an immediate child, then fails into a 60 s (queued) retry."""
    rapi_echo.trigger({"kind": "delayed"}, delay="1h")
    rapi_echo.trigger({"kind": "immediate"})
    raise RuntimeError("retry me later")


def _late_run(payload: Any) -> str:
    return "late"


@contextlib.contextmanager
def timer_service(engine: Engine) -> Iterator[None]:
    service = TimerService(engine.trigger)
    service.start()
    try:
        yield
    finally:
        service.stop()


def test_retrieve_completed_run(engine: Engine) -> None:
    """RUNS-1: status, flags, output, ordered timestamps, attempt count."""
    with engine.worker():
        run = wait_for_status(rapi_echo.trigger({"a": 1}).id)
    assert run.status is ct.RunStatus.COMPLETED and run.is_completed and run.is_success
    assert not run.is_failed and not run.is_cancelled and run.error is None
    assert run.output == {"echo": {"a": 1}}
    assert run.created_at is not None and run.started_at is not None
    assert run.finished_at is not None and run.updated_at is not None
    assert run.created_at <= run.started_at <= run.finished_at
    assert run.attempt_count >= 1 and run.depth == 0 and run.task_identifier == "rapi-echo"


def test_retrieve_failed_run_has_last_error_and_no_output(engine: Engine) -> None:
    """RUNS-2: no output; ``error.message`` is the last attempt's message."""
    with engine.worker():
        run = wait_for_status(rapi_boom.trigger({}).id)
    assert run.status is ct.RunStatus.FAILED and run.output is None
    assert run.attempt_count == 2
    assert run.error is not None and run.error.message == "boom 2"
    assert run.error.name == "ValueError"


def test_retrieve_unknown_run_raises(engine: Engine) -> None:
    """§11.1: an unknown id is a RunNotFoundError (for cancel and replay too)."""
    for call in (ct.runs.retrieve, ct.runs.cancel, ct.runs.replay):
        with pytest.raises(ct.RunNotFoundError):
            call("run_doesnotexist")


def test_list_filters_and_pages_newest_first(engine: Engine) -> None:
    """RUNS-4: status + tag filters; pages newest first; every match exactly once."""
    # Given completed runs tagged "t", failed runs tagged "t", and untagged completed runs
    with engine.worker():
        tagged = [rapi_echo.trigger(i, tags=["t"]) for i in range(7)]
        failed = [rapi_boom.trigger(i, tags=["t", "u"]) for i in range(2)]
        plain = [rapi_echo.trigger(i) for i in range(3)]
        for handle in [*tagged, *failed, *plain]:
            wait_for_status(handle.id)
    expected = sorted(
        (ct.runs.retrieve(h.id) for h in tagged), key=lambda r: (r.created_at, r.id), reverse=True
    )
    # When completed runs tagged "t" are listed three at a time
    first = ct.runs.list(status=["COMPLETED"], tag="t", limit=3)
    # Then iterating walks every page, newest first, each run once
    assert [r.id for r in first] == [r.id for r in expected]
    # And the pages are 3, 3, 1 long
    pages = [first]
    while pages[-1].has_next_page():
        pages.append(pages[-1].get_next_page())
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [r.id for p in pages for r in p.data] == [r.id for r in expected]
    # And a result that fills its last page exactly has no trailing empty page
    single = ct.runs.list(status="FAILED", limit=1)
    assert single.has_next_page() and not single.get_next_page().has_next_page()
    # And the other filters select what they name
    assert {r.id for r in ct.runs.list(status="FAILED")} == {h.id for h in failed}
    assert {r.id for r in ct.runs.list(tag=["u", "nope"])} == {h.id for h in failed}
    assert {r.id for r in ct.runs.list(task_identifier="rapi-boom")} == {h.id for h in failed}
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert list(ct.runs.list(from_=later)) == []
    assert len(list(ct.runs.list(to=later, limit=100))) == 12


def test_list_page_size_is_1_to_100_default_25(engine: Engine) -> None:
    """RUNS-5: ``limit=101`` (or 0) is rejected; the default page holds 25 runs."""
    with pytest.raises(ValueError):
        ct.runs.list(limit=101)
    with pytest.raises(ValueError):
        ct.runs.list(limit=0)
    handle = rapi_echo.batch_trigger([{"payload": i} for i in range(30)])
    page = ct.runs.list()
    assert len(page) == 25 and page.has_next_page()
    assert sorted(r.id for r in page) == sorted(handle.runs)


def test_cancel_cascades_to_children_triggered_inside_the_run(engine: Engine) -> None:
    """RUNS-6 (partial), §11.3: cancelling a QUEUED parent cancels its unfinished children
    (fired with plain ``trigger``); a finished child keeps its status."""
    with engine.worker():
        # Given a parent that fired two children and now waits QUEUED for a 60 s retry
        parent = rapi_spawner.trigger({})
        wait_for(
            lambda: (
                len(ct.runs.retrieve(parent.id).children) == 2
                and ct.runs.retrieve(parent.id).status is ct.RunStatus.QUEUED
            )
        )
        delayed_id, immediate_id = ct.runs.retrieve(parent.id).children
        wait_for_status(immediate_id, "COMPLETED")
        assert ct.runs.retrieve(delayed_id).status is ct.RunStatus.DELAYED
        # When the parent is cancelled
        ct.runs.cancel(parent.id)
    # Then the parent and its unfinished child are CANCELED; the finished child is not
    assert ct.runs.retrieve(parent.id).status is ct.RunStatus.CANCELED
    delayed = ct.runs.retrieve(delayed_id)
    assert delayed.status is ct.RunStatus.CANCELED
    assert delayed.error is not None and delayed.error.message == "Canceled by user"
    assert ct.runs.retrieve(immediate_id).status is ct.RunStatus.COMPLETED


def test_cancel_a_pending_version_run_and_it_never_runs(engine: Engine) -> None:
    """§11.3, D-18: a PENDING_VERSION run is cancelled at once and stays cancelled when a
    worker that defines its task starts."""
    # Given a run of a task nobody defines yet, cancelled while it waits
    task_id = f"rapi-late-{uuid.uuid4().hex[:8]}"
    handle = ct.tasks.trigger(task_id, {})
    ct.runs.cancel(handle.id)
    assert ct.runs.retrieve(handle.id).status is ct.RunStatus.CANCELED
    # When the task becomes defined and a worker has run other work
    ct.task(id=task_id, run=_late_run)
    with engine.worker():
        wait_for_status(ct.tasks.trigger(task_id, {}).id, "COMPLETED")
    # Then the cancelled run never started
    run = ct.runs.retrieve(handle.id)
    assert run.status is ct.RunStatus.CANCELED and run.started_at is None


def test_replay_copies_payload_tags_seed_metadata_not_the_key(engine: Engine) -> None:
    """RUNS-8: new run with payload P, tags T, seed metadata M (not the mutated M2), no
    idempotency key, ``is_replay`` true (also in ctx)."""
    with engine.worker():
        # Given a completed run whose metadata was changed after it was triggered
        original = rapi_echo.trigger(
            {"p": 1}, tags=["a", "b"], metadata={"m": 1}, idempotency_key="replay-key"
        )
        wait_for_status(original.id)
        redis_client(engine.store).hset(engine.store.keys.run(original.id), "meta", '{"m":2}')
        assert ct.runs.retrieve(original.id).metadata == {"m": 2}
        # When it is replayed
        replayed = ct.runs.replay(original.id)
        run = wait_for_status(replayed.id)
    # Then the new run has the original inputs and is marked as a replay
    assert replayed.id != original.id and not replayed.is_cached
    assert run.payload == {"p": 1} and run.tags == ["a", "b"] and run.metadata == {"m": 1}
    assert run.idempotency_key is None and run.is_replay
    assert run.output == {"echo": {"p": 1}} and seen_replay[replayed.id] is True
    assert seen_replay[original.id] is False
    assert ct.runs.retrieve(original.id).idempotency_key == "replay-key"


def test_reschedule_moves_a_delayed_run_and_rejects_others(engine: Engine) -> None:
    """RUNS-9, D-13: reschedule of a DELAYED run moves ``delayed_until`` (and it runs then);
    a QUEUED run raises InvalidRunStateError; an invalid delay is a ValueError."""
    # Given a delayed run and a queued run
    delayed = rapi_echo.trigger({}, delay="1h")
    queued = rapi_echo.trigger({})
    # When the delayed run is moved to two hours
    before = datetime.now(timezone.utc)
    moved = ct.runs.reschedule(delayed.id, delay="2h")
    # Then its delayed_until moved
    assert moved.status is ct.RunStatus.DELAYED and moved.delayed_until is not None
    assert abs((moved.delayed_until - before).total_seconds() - 7200) < 5
    # And other statuses and bad delays are refused
    with pytest.raises(ct.InvalidRunStateError, match="not delayed"):
        ct.runs.reschedule(queued.id, delay="1h")
    with pytest.raises(ValueError):
        ct.runs.reschedule(delayed.id, delay="banana")
    with pytest.raises(ct.RunNotFoundError):
        ct.runs.reschedule("run_doesnotexist", delay="1h")
    # When it is moved to one second from now
    ct.runs.reschedule(delayed.id, delay="1s")
    # Then it runs after about a second
    with engine.worker():
        run = wait_for_status(delayed.id, timeout=10)
    assert run.status is ct.RunStatus.COMPLETED


def test_child_related_runs(engine: Engine) -> None:
    """RUNS-10: the child's parent id, depth 1 and root; the parent lists the child."""
    with engine.worker():
        parent = wait_for_status(rapi_parent.trigger({}).id)
        child = wait_for_status(parent.output)
    assert child.parent_id == parent.id and child.root_id == parent.id and child.depth == 1
    assert parent.children == [child.id] and parent.depth == 0 and parent.parent_id is None


def test_poll_returns_on_any_final_status(engine: Engine) -> None:
    """D-6, §11.6: poll stops on COMPLETED, CANCELED and EXPIRED alike."""
    # Given a cancelled run and an expired run
    canceled = rapi_echo.trigger({}, delay="1h")
    ct.runs.cancel(canceled.id)
    with timer_service(engine):
        expired = rapi_echo.trigger({}, ttl=1)
        wait_for_status(expired.id, "EXPIRED", timeout=10)
    # When they are polled
    # Then poll returns their final state
    assert ct.runs.poll(canceled.id, poll_interval_ms=10).status is ct.RunStatus.CANCELED
    assert ct.runs.poll(expired, poll_interval_ms=10).status is ct.RunStatus.EXPIRED
    # And a running run is polled until it completes
    with engine.worker():
        handle = rapi_echo.trigger({"x": 1})
        assert ct.runs.poll(handle, poll_interval_ms=20).output == {"echo": {"x": 1}}
