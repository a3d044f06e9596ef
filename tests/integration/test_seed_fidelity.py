"""Issue 15: the seed's names work as the seed writes them (SEMANTICS §1.3, §1.7, §1.8, §8,
§15, D-19, D-21), through the public API with a real worker. Task ids start with ``sf-``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

import celery_trigger as ct
from celery_trigger.status import RunStatus
from tests.helpers import wait_for

from .conftest import Engine, wait_for_status

_seen: dict[str, list[Any]] = {}


def _tid(name: str) -> str:
    return f"sf-{name}-{uuid.uuid4().hex[:6]}"


def test_ctx_shows_machine_preset_version_region_priority_and_cost(engine: Engine) -> None:
    """§1.7/§1.8, D-21: ctx.machine.preset, ctx.run.version/region/priority/started_at and
    the cost so far; runs.retrieve shows version, region and priority too."""

    # Given a task that records what its ctx shows
    def run(payload: Any, ctx: ct.Context) -> dict[str, Any]:
        return {
            "preset": ctx.machine.preset,
            "name": ctx.machine.name,
            "version": ctx.run.version,
            "region": ctx.run.region,
            "priority": ctx.run.priority,
            "started": ctx.run.started_at is not None,
            "cost": ctx.run.cost_in_cents,
            "duration": ctx.run.duration_ms,
        }

    task = ct.task(id=_tid("ctx"), run=run, machine="large-1x")
    with engine.worker(trigger_version="20250208.1"):  # D-21: a worker serving the version
        # When it is triggered with version, region and priority
        handle = task.trigger({}, version="20250208.1", region="eu-central-1", priority=10)
        run_ = wait_for_status(handle.id, RunStatus.COMPLETED)
    # Then ctx shows them under the seed's names
    assert run_.output == {
        "preset": "large-1x",
        "name": "large-1x",
        "version": "20250208.1",
        "region": "eu-central-1",
        "priority": 10.0,
        "started": True,
        "cost": 0.0,
        "duration": 0,
    }
    # and runs.retrieve shows them too
    assert (run_.version, run_.region, run_.priority) == ("20250208.1", "eu-central-1", 10.0)


def test_version_and_region_must_be_strings(engine: Engine) -> None:
    """D-21: a version or region is a non-empty string; anything else raises at the call."""
    task = ct.task(id=_tid("bad"), run=lambda p: None)
    with pytest.raises(TypeError, match="version"):
        task.trigger({}, version=3)
    with pytest.raises(TypeError, match="region"):
        task.trigger({}, region="")


def test_chained_metadata_updater_has_flush(engine: Engine) -> None:
    """§8, issue 15: ``metadata.set(...).increment(...).flush()`` sends the writes now."""

    # Given a task that chains mutators and ends the chain with flush()
    def run(payload: Any, ctx: ct.Context) -> str:
        ct.metadata.set("status", "done").increment("steps", 2).flush()
        ct.metadata.parent.set("from_child", True).flush()
        stored = ct.runs.retrieve(ctx.run.id).metadata or {}
        return f"{stored.get('status')}:{stored.get('steps')}:{stored.get('from_child')}"

    task = ct.task(id=_tid("flush"), run=run)
    with engine.worker():
        handle = task.trigger({})
        done = wait_for_status(handle.id, RunStatus.COMPLETED)
    # Then the writes were stored before the run returned
    assert done.output == "done:2:True"


def test_define_config_accepts_default_machine(make_engine: Callable[..., Engine]) -> None:
    """CFG-4 under the seed's name: ``define_config(default_machine=...)`` sets the machine
    of tasks that declare none; giving both names with different values is an error."""
    # Given a project configured with default_machine
    config = ct.define_config(project="sf", default_machine="small-2x")
    assert config.machine == "small-2x"
    with pytest.raises(ct.ConfigurationError, match="default_machine"):
        ct.define_config(project="sf", machine="micro", default_machine="small-2x")
    engine = make_engine(default_machine="medium-1x")
    task = ct.task(id=_tid("machine"), run=lambda p, ctx: ctx.machine.preset)
    with engine.worker():
        # When a task without a machine runs
        handle = task.trigger({})
        # Then it runs on the configured default
        assert wait_for_status(handle.id, RunStatus.COMPLETED).output == "medium-1x"


def _on_failure(*, ctx: ct.Context, error: BaseException) -> None:
    _seen.setdefault(ctx.run.id, []).append(("on_failure", str(error)))


def _run_failing(payload: Any, ctx: ct.Context) -> None:
    _seen.setdefault(ctx.run.id, []).append(("attempt", ctx.attempt.number))
    raise RuntimeError("boom")


def test_abort_inside_catch_error_fails_the_run_without_retry(engine: Engine) -> None:
    """D-19: AbortTaskRunError raised in catch_error ends the run FAILED with that error,
    no further attempt, on_failure called; another exception there still CRASHES (TASK-13)."""

    # Given two tasks with attempts left whose catch_error raise
    def abort(*, error: BaseException, **_: Any) -> None:
        raise ct.AbortTaskRunError(f"giving up: {error}")

    def crash(**_: Any) -> None:
        raise ValueError("bug in catch_error")

    retry = {"max_attempts": 5, "min_timeout_in_ms": 10, "randomize": False}
    aborting = ct.task(id=_tid("abort"), run=_run_failing, retry=retry, catch_error=abort,
                       on_failure=_on_failure)  # fmt: skip
    crashing = ct.task(id=_tid("crash"), run=_run_failing, retry=retry, catch_error=crash,
                       on_failure=_on_failure)  # fmt: skip
    with engine.worker():
        a, c = aborting.trigger({}), crashing.trigger({})
        failed = wait_for_status(a.id)
        crashed = wait_for_status(c.id)
    # Then the aborted run is FAILED after one attempt, with on_failure called once
    assert failed.status is RunStatus.FAILED and failed.attempt_count == 1
    assert failed.error is not None and failed.error.message == "giving up: boom"
    assert _seen[a.id] == [("attempt", 1), ("on_failure", "giving up: boom")]
    # and the other is CRASHED without on_failure
    assert crashed.status is RunStatus.CRASHED and crashed.attempt_count == 1
    assert _seen[c.id] == [("attempt", 1)]


def test_on_throw_backoff_above_the_wait_threshold_parks_the_run(
    make_engine: Callable[..., Engine],
) -> None:
    """§1.4, D-10: retry.on_throw pauses with a durable wait: a back-off longer than the wait
    threshold parks the run (WAITING, on_wait/on_resume called) instead of sleeping in the
    worker, and a try that failed before the park is not called again on replay."""
    engine = make_engine(wait_threshold=0.2)
    tries: list[int] = []
    waits: list[str] = []

    # Given a task whose on_throw fn fails once, with a 1 s back-off (above the threshold)
    def flaky(t: ct.retry.ThrowContext) -> str:
        tries.append(t.attempt)
        if t.attempt == 1:
            raise RuntimeError("not yet")
        return f"ok on {t.attempt}/{t.max_attempts}"

    def run(payload: Any, ctx: ct.Context) -> str:
        return str(
            ct.retry.on_throw(flaky, max_attempts=3, min_timeout_in_ms=1000, randomize=False)
        )

    task = ct.task(
        id=_tid("onthrow"),
        run=run,
        on_wait=lambda wait, **_: waits.append(f"wait:{wait['type']}"),
        on_resume=lambda wait, **_: waits.append(f"resume:{wait['type']}"),
    )
    with engine.worker():
        handle = task.trigger({})
        # When the first try fails, the run parks for the back-off
        wait_for_status(handle.id, RunStatus.WAITING)
        done = wait_for_status(handle.id, RunStatus.COMPLETED)
    # Then the second try succeeded, the first was not re-called on replay
    assert done.output == "ok on 2/3"
    assert tries == [1, 2]
    assert waits == ["wait:duration", "resume:duration"]


#: Each trigger option and the test below that shows where it ends up (D-21: nothing is
#: accepted and then dropped).
_OPTION_CHECKS = {
    "delay": "run.delayed_until",
    "ttl": "run.ttl",
    "priority": "run.priority, ctx.run.priority",
    "tags": "run.tags, ctx.run.tags",
    "metadata": "run.metadata",
    "queue": "run.queue, ctx.queue.name",
    "concurrency_key": "run.concurrency_key",
    "idempotency_key": "run.idempotency_key, ctx.run.idempotency_key",
    "idempotency_key_ttl": "a repeat after the TTL makes a new run",
    "machine": "run.machine, ctx.machine.preset",
    "max_attempts": "run.max_attempts, ctx.run.max_attempts",
    "max_duration": "run.max_duration, ctx.run.max_duration",
    "version": "run.version, ctx.run.version",
    "region": "run.region, ctx.run.region",
}


def test_every_trigger_option_shows_up_where_documented(engine: Engine) -> None:
    """D-21 / issue 15: a trigger with every documented option shows each one on the run
    (``runs.retrieve``) and in ``ctx``; the list of checks covers every accepted option."""
    from celery_trigger._engine.prepare import TRIGGER_OPTIONS

    assert set(_OPTION_CHECKS) == set(TRIGGER_OPTIONS)

    # Given a task that returns what its ctx shows
    def run(payload: Any, ctx: ct.Context) -> dict[str, Any]:
        return {
            "priority": ctx.run.priority,
            "tags": list(ctx.run.tags),
            "queue": ctx.queue.name,
            "idem": ctx.run.idempotency_key,
            "machine": ctx.machine.preset,
            "max_attempts": ctx.run.max_attempts,
            "max_duration": ctx.run.max_duration,
            "version": ctx.run.version,
            "region": ctx.run.region,
        }

    task = ct.task(id=_tid("opts"), run=run, retry={"max_attempts": 5})
    queue = f"sf-q-{uuid.uuid4().hex[:6]}"
    with engine.worker(trigger_version="v2"):  # D-21: a worker serving the version
        # When it is triggered with every option
        handle = task.trigger(
            {},
            delay="1s",
            ttl="1h",
            priority=30,
            tags=["a", "b"],
            metadata={"m": 1},
            queue={"name": queue, "concurrency_limit": 2},
            concurrency_key="tenant-1",
            idempotency_key="once",
            idempotency_key_ttl="1s",
            machine="medium-2x",
            max_attempts=4,
            max_duration=120,
            version="v2",
            region="us-east-1",
        )
        delayed = ct.runs.retrieve(handle.id)
        done = wait_for_status(handle.id, RunStatus.COMPLETED)
        # and again with the same key once its TTL has passed
        again = wait_for(lambda: (h := task.trigger({}, idempotency_key="once",
                                                    idempotency_key_ttl="1s")).id != handle.id
                         and h)  # fmt: skip
    # Then the run and its ctx show each option
    assert delayed.status is RunStatus.DELAYED and delayed.delayed_until is not None
    assert (done.ttl, done.priority, done.tags, done.metadata) == ("1h", 30.0, ["a", "b"], {"m": 1})
    assert (done.queue, done.concurrency_key, done.idempotency_key) == (queue, "tenant-1", "once")
    assert (done.machine, done.max_attempts, done.max_duration) == ("medium-2x", 4, 120)
    assert (done.version, done.region) == ("v2", "us-east-1")
    assert done.output == {
        "priority": 30.0,
        "tags": ["a", "b"],
        "queue": queue,
        "idem": "once",
        "machine": "medium-2x",
        "max_attempts": 4,
        "max_duration": 120,
        "version": "v2",
        "region": "us-east-1",
    }
    assert again and not again.is_cached
