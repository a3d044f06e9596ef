"""Run metadata in real runs on a real worker (SEMANTICS §8, META-1..14).

The operation semantics on the stored document are in ``tests/store/test_contract_metadata
.py``; here: the local copy, flushing (every second, ``flush()``, at park and at the end of
every attempt, failures included), parent/root targets, limits, the updatable window and the
behaviour outside runs. Runs that must stay executing while the test looks block on a
``Gate`` (an event with a deadline), never on a sleep.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import pytest

import celery_trigger as ct
from tests.helpers import redis_client

from .conftest import Engine, wait_for, wait_for_status

GATES: dict[str, threading.Event] = {}
FAST = {"max_attempts": 2, "min_timeout_in_ms": 10, "max_timeout_in_ms": 10, "randomize": False}


def gate() -> str:
    name = uuid.uuid4().hex
    GATES[name] = threading.Event()
    return name


def wait_gate(name: str) -> None:
    if not GATES[name].wait(15):
        raise TimeoutError("the test never opened the gate")


def stored(run_id: str) -> Any:
    return ct.runs.retrieve(run_id).metadata


@ct.task(id="meta-progress")
def meta_progress(payload: dict[str, Any]) -> Any:
    ct.metadata.set("progress", 0.5)
    seen = ct.metadata.get("progress")
    if payload.get("flush"):
        ct.metadata.flush()
    wait_gate(payload["gate"])
    return seen


@ct.task(id="meta-ops")
def meta_ops(payload: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    ct.metadata.append("logs", "a").append("logs", "b")
    seen["append"] = ct.metadata.get("logs")
    ct.metadata.remove("logs", "a")
    seen["remove"] = ct.metadata.get("logs")
    ct.metadata.increment("n").increment("n", 0.5).decrement("n", 2)
    seen["n"] = ct.metadata.get("n")
    ct.metadata.set("$.progress.step", 2).set("$.progress.total", 3)
    seen["path"] = ct.metadata.get("progress")
    ct.metadata.set("temp", 1).del_("temp")
    seen["deleted"] = ct.metadata.get("temp")
    seen["before_replace"] = ct.metadata.current()
    ct.metadata.replace({"x": 1})
    seen["replaced"] = ct.metadata.current()
    ct.metadata.set("y", [1, {"z": []}])
    return seen


def test_operations_change_the_local_copy_at_once_and_the_stored_one_after(engine: Engine) -> None:
    """META-1, META-3..7, §8.2: each operation is visible to ``get``/``current`` in the run at
    once; the stored document at the end is the local one; mutators chain."""
    with engine.worker():
        # When a run applies every operation
        handle = meta_ops.trigger(None)
        run = wait_for_status(handle.id)
    # Then the run saw each effect synchronously
    seen = run.output
    assert seen["append"] == ["a", "b"] and seen["remove"] == ["b"]
    assert seen["n"] == -0.5 and seen["path"] == {"step": 2, "total": 3}
    assert seen["deleted"] is None
    assert seen["before_replace"] == {"logs": ["b"], "n": -0.5, "progress": {"step": 2, "total": 3}}
    assert seen["replaced"] == {"x": 1}
    # And the stored document equals the run's final local copy
    assert run.metadata == {"x": 1, "y": [1, {"z": []}]}


def test_writes_are_stored_within_two_seconds_while_the_run_executes(engine: Engine) -> None:
    """META-1, META-2, §8.1: ``get`` answers synchronously; the periodic flush (1 s) stores the
    value while the run is still executing."""
    name = gate()
    with engine.worker():
        # Given a run that sets progress and then blocks
        handle = meta_progress.trigger({"gate": name})
        wait_for_status(handle.id, "EXECUTING")
        started = time.monotonic()
        # When the test polls the stored metadata
        wait_for(lambda: stored(handle.id) == {"progress": 0.5}, timeout=3)
        took = time.monotonic() - started
        assert ct.runs.retrieve(handle.id).status is ct.RunStatus.EXECUTING
        GATES[name].set()
        run = wait_for_status(handle.id)
    # Then it appeared within about the flush interval, and the run read it at once
    assert took < 2.0
    assert run.output == 0.5


def test_flush_stores_queued_writes_immediately(make_engine: Any) -> None:
    """META-2, §8.2 ``flush``: with a 60 s flush interval, ``flush()`` is what stores them."""
    engine = make_engine(metadata_flush_interval=60)
    name = gate()
    with engine.worker():
        # Given a run that sets progress, flushes and blocks
        handle = meta_progress.trigger({"gate": name, "flush": True})
        # Then the value is stored long before the periodic flush would run
        wait_for(lambda: stored(handle.id) == {"progress": 0.5}, timeout=2)
        assert ct.runs.retrieve(handle.id).status is ct.RunStatus.EXECUTING
        GATES[name].set()
        wait_for_status(handle.id)


@ct.task(id="meta-fails", retry=FAST)
def meta_fails(payload: Any, ctx: ct.Context) -> Any:
    ct.metadata.increment("attempts").append("seen", ct.metadata.current())
    if ctx.attempt.number < payload["succeed_on"]:
        raise RuntimeError(f"attempt {ctx.attempt.number} fails")
    return ct.metadata.current()


def test_writes_of_a_failing_attempt_are_stored_and_the_next_attempt_starts_from_them(
    make_engine: Any,
) -> None:
    """META-10, §8.3 (retries): the final flush happens on failure too; attempt 2 starts from
    the stored value (no periodic flush: interval 60 s)."""
    engine = make_engine(metadata_flush_interval=60)
    with engine.worker():
        # When a run fails on every attempt, and another succeeds on attempt 2
        failed = meta_fails.trigger({"succeed_on": 99})
        retried = meta_fails.trigger({"succeed_on": 2})
        failed_run = wait_for_status(failed.id)
        retried_run = wait_for_status(retried.id)
    # Then the failed run's writes of both attempts are stored
    assert failed_run.status is ct.RunStatus.FAILED
    assert failed_run.metadata["attempts"] == 2
    # And attempt 2 saw attempt 1's stored writes
    assert retried_run.output["attempts"] == 2
    assert retried_run.output["seen"][1] == {"attempts": 2, "seen": [{"attempts": 1}]}


@ct.task(id="meta-child-counter")
def meta_child_counter(payload: Any) -> None:
    ct.metadata.parent.increment("done").append("who", payload)


@ct.task(id="meta-fanout")
def meta_fanout(payload: dict[str, Any]) -> Any:
    results = meta_child_counter.batch_trigger_and_wait(
        [{"payload": i} for i in range(payload["n"])]
    )
    assert all(r.ok for r in results)
    return ct.metadata.current()


def test_a_hundred_children_incrementing_the_parent_lose_no_update(engine: Engine) -> None:
    """META-8 (race): 100 children each ``metadata.parent.increment("done")`` concurrently on
    an 8-thread worker: the parent's stored ``done`` is exactly 100."""
    with engine.worker(concurrency=8):
        # When a parent waits on 100 children that all increment its metadata
        handle = meta_fanout.trigger({"n": 100})
        run = wait_for_status(handle.id, timeout=60)
    # Then no increment and no append was lost, and the resumed parent read them back
    assert run.status is ct.RunStatus.COMPLETED, run.error
    assert run.metadata["done"] == 100
    assert sorted(run.metadata["who"]) == list(range(100))
    assert run.output["done"] == 100


@ct.task(id="meta-watcher")
def meta_watcher(payload: dict[str, Any]) -> dict[str, Any]:
    handle = meta_child_counter.batch_trigger([{"payload": i} for i in range(10)])
    wait_for(
        lambda: all(ct.runs.retrieve(r).is_completed for r in handle.runs),
        timeout=20,
        message="children did not finish",
    )
    before = ct.metadata.get("done")
    ct.metadata.refresh()
    return {"before": before, "after": ct.metadata.get("done")}


def test_parent_sees_childrens_writes_locally_only_after_refresh(engine: Engine) -> None:
    """META-8: ten children increment the parent (stored: 10); the running parent's local copy
    shows them only after ``metadata.refresh()``."""
    with engine.worker(concurrency=4):
        handle = meta_watcher.trigger({})
        run = wait_for_status(handle.id, timeout=30)
    assert run.output == {"before": None, "after": 10}
    assert run.metadata["done"] == 10


@ct.task(id="meta-leaf")
def meta_leaf(payload: Any) -> None:
    ct.metadata.root.set("from_leaf", True)
    ct.metadata.parent.set("leaf_was_here", True).decrement("credit", -3)


@ct.task(id="meta-middle")
def meta_middle(payload: Any) -> None:
    meta_leaf.trigger_and_wait(None).unwrap()


@ct.task(id="meta-top")
def meta_top(payload: Any) -> str:
    meta_middle.trigger_and_wait(None).unwrap()
    return "ok"


@ct.task(id="meta-self-root")
def meta_self_root(payload: Any) -> Any:
    ct.metadata.root.set("r", 1)
    ct.metadata.parent.increment("p", 2).decrement("p", 5)
    ct.metadata.flush()
    ct.metadata.refresh()
    return ct.metadata.current()


def test_root_and_parent_targets(engine: Engine) -> None:
    """META-9, §8.2: ``root.set`` from a grandchild updates the root, not the middle run;
    ``parent.*`` the middle run; on a run without parent both update the run itself;
    ``parent.decrement`` subtracts the absolute value."""
    with engine.worker(concurrency=4):
        # When a grandchild writes to its root and its parent, and a lone run to "both"
        top = meta_top.trigger(None)
        lone = meta_self_root.trigger(None)
        wait_for_status(top.id, timeout=30)
        lone_run = wait_for_status(lone.id)
        middle_id = ct.runs.retrieve(top.id).children[0]
    # Then each write reached its target run only
    assert ct.runs.retrieve(top.id).metadata == {"from_leaf": True}
    assert ct.runs.retrieve(middle_id).metadata == {"leaf_was_here": True, "credit": -3}
    leaf_id = ct.runs.retrieve(middle_id).children[0]
    assert ct.runs.retrieve(leaf_id).metadata is None
    # And a run without a parent is its own parent and root
    assert lone_run.metadata == {"r": 1, "p": -3} and lone_run.output == {"r": 1, "p": -3}


@ct.task(id="meta-child-plain")
def meta_child_plain(payload: Any) -> Any:
    return ct.metadata.current()


@ct.task(id="meta-parent-plain")
def meta_parent_plain(payload: Any) -> Any:
    return meta_child_plain.trigger_and_wait(None).unwrap()


def test_child_does_not_inherit_metadata(engine: Engine) -> None:
    """META-11, TRIG-15 (metadata): a child triggered without metadata has none."""
    with engine.worker():
        parent = meta_parent_plain.trigger(None, metadata={"secret": 1})
        run = wait_for_status(parent.id, timeout=20)
    child = ct.runs.retrieve(run.children[0])
    assert run.output is None and child.metadata is None
    assert run.metadata == {"secret": 1}


@ct.task(id="meta-big")
def meta_big(payload: Any) -> str:
    ct.metadata.set("a", 1)
    ct.metadata.flush()
    ct.metadata.set("big", "x" * 300_000)
    ct.metadata.flush()
    return "still running" if ct.metadata.get("big") else "lost local"


def test_oversized_write_keeps_the_stored_value_and_logs(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """META-13, §8.3: a write making the document 300 KB: the run completes, the stored
    metadata keeps its previous value, an error is logged; the local copy keeps the write."""
    caplog.set_level(logging.ERROR, logger="celery_trigger")
    with engine.worker():
        handle = meta_big.trigger(None)
        run = wait_for_status(handle.id)
    assert run.status is ct.RunStatus.COMPLETED and run.output == "still running"
    assert run.metadata == {"a": 1}
    assert any(
        "Metadata exceeds maximum size of 262144 bytes" in r.getMessage()
        and handle.id in r.getMessage()
        for r in caplog.records
    )


@pytest.mark.parametrize("interval", [0, -1, "1s", True])
def test_flush_interval_setting_must_be_a_positive_number(make_engine: Any, interval: Any) -> None:
    """§8.1 (flush interval), configuration: a bad ``trigger_metadata_flush_interval`` is a
    ConfigurationError at ``setup``."""
    with pytest.raises(ct.ConfigurationError, match="trigger_metadata_flush_interval"):
        make_engine(metadata_flush_interval=interval)


def test_outside_a_run_mutators_do_nothing_and_readers_return_none(engine: Engine) -> None:
    """META-14, §8.1: outside a run every mutator is a silent no-op (still chainable) and
    ``current``/``get`` return None; ``flush``/``refresh`` do nothing."""
    updater = ct.metadata.set("a", 1).increment("n").append("l", 1)
    ct.metadata.parent.set("p", 1)
    ct.metadata.root.increment("r")
    ct.metadata.replace({"x": 1})
    ct.metadata.flush()
    ct.metadata.refresh()
    assert isinstance(updater, ct.metadata.MetadataUpdater)
    assert ct.metadata.current() is None and ct.metadata.get("a") is None
    assert redis_client(engine.store).zcard(engine.store.keys.by_created()) == 0


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: ct.metadata.set("__proto__", 1), ValueError),
        (lambda: ct.metadata.set("$.a.constructor", 1), ValueError),
        (lambda: ct.metadata.parent.append("$.prototype.x", 1), ValueError),
        (lambda: ct.metadata.del_("$.a.b"), ValueError),
        (lambda: ct.metadata.set("$.a..b", 1), ValueError),
        (lambda: ct.metadata.set("", 1), ValueError),
        (lambda: ct.metadata.set("k", object()), TypeError),
        (lambda: ct.metadata.increment("k", "1"), TypeError),
        (lambda: ct.metadata.increment("k", True), TypeError),
        (lambda: ct.metadata.increment("k", float("nan")), ValueError),
        (lambda: ct.metadata.set("k", "\ud800"), ValueError),
        (lambda: ct.metadata.replace({"__proto__": {}}), ValueError),
        (lambda: ct.metadata.replace([1]), TypeError),  # type: ignore[arg-type]
    ],
)
def test_bad_input_raises_at_the_call(engine: Engine, call: Any, error: type) -> None:
    """§8.2 (unsafe keys), issue 5: unsafe keys, paths to del_, non-JSON values and
    non-numbers raise a typed error at the call, in or out of a run."""
    with pytest.raises(error):
        call()


@ct.task(id="meta-unsafe")
def meta_unsafe(payload: Any) -> str:
    try:
        ct.metadata.set("__proto__", {"polluted": True})
    except ValueError as exc:
        ct.metadata.set("ok", True)
        return str(exc)
    return "accepted"


def test_unsafe_key_in_a_run_raises_and_writes_nothing(engine: Engine) -> None:
    """§8.2: ``__proto__`` is rejected inside a run; the document never contains it."""
    with engine.worker():
        run = wait_for_status(meta_unsafe.trigger(None).id)
    assert "__proto__" in run.output and "reserved" in run.output
    assert run.metadata == {"ok": True}


def test_trigger_time_metadata_with_a_reserved_key_creates_nothing(engine: Engine) -> None:
    """TRIG-16 (shape), §8.2: reserved top-level keys and non-dicts are refused at trigger."""
    with pytest.raises(ValueError, match="reserved"):
        meta_ops.trigger(None, metadata={"constructor": 1})
    with pytest.raises(TypeError):
        meta_ops.trigger(None, metadata=[1])
    assert redis_client(engine.store).zcard(engine.store.keys.by_created()) == 0


# the API and the updatable window -------------------------------------------------------
@ct.task(id="meta-noop")
def meta_noop(payload: Any) -> str:
    return "done"


def _finished_ago(engine: Engine, run_id: str, ms: int) -> None:
    finished = int(time.time() * 1000) - ms
    redis_client(engine.store).hset(engine.store.keys.run(run_id), "finished", str(finished))


def test_api_updates_are_accepted_for_an_hour_after_completion(engine: Engine) -> None:
    """META-12, §8.3: ``runs.update_metadata`` 30 min after completion is applied; 2 h after,
    ``Cannot update metadata for a completed run`` and nothing changes."""
    with engine.worker():
        recent = wait_for_status(meta_noop.trigger(None, metadata={"v": 0}).id)
        old = wait_for_status(meta_noop.trigger(None, metadata={"v": 0}).id)
    # Given one run finished 30 minutes ago and one 2 hours ago
    _finished_ago(engine, recent.id, 30 * 60_000)
    _finished_ago(engine, old.id, 2 * 3600_000)
    # When both are updated through the API
    doc = ct.runs.update_metadata(
        recent.id,
        operations=[
            {"type": "increment", "key": "v", "value": 2},
            {"type": "set", "key": "$.a.b", "value": "c"},
        ],
    )
    with pytest.raises(ct.InvalidRunStateError, match="Cannot update metadata for a completed"):
        ct.runs.update_metadata(old.id, {"replaced": True})
    # Then only the recent run changed, and neither changed status (STATUS-6)
    assert doc == {"v": 2, "a": {"b": "c"}} == stored(recent.id)
    assert stored(old.id) == {"v": 0}
    assert ct.runs.retrieve(recent.id).status is ct.RunStatus.COMPLETED


def test_api_update_errors_are_typed_and_write_nothing(engine: Engine) -> None:
    """§8.3: unknown run, oversized document and malformed operations raise at the call."""
    handle = meta_noop.trigger(None, metadata={"v": 0})
    with pytest.raises(ct.RunNotFoundError):
        ct.runs.update_metadata("run_nope", {"a": 1})
    with pytest.raises(ValueError, match="Metadata exceeds maximum size of 262144 bytes"):
        ct.runs.update_metadata(handle.id, {"big": "x" * 300_000})
    with pytest.raises(ValueError):
        ct.runs.update_metadata(handle.id, operations=[{"type": "explode", "key": "a"}])
    with pytest.raises(ValueError, match="reserved"):
        ct.runs.update_metadata(
            handle.id, operations=[{"type": "set", "key": "__proto__", "value": 1}]
        )
    assert stored(handle.id) == {"v": 0}
    # And replace plus operations in one call apply in order
    assert ct.runs.update_metadata(
        handle.id, {"a": [1]}, operations=[{"type": "append", "key": "a", "value": 2}]
    ) == {"a": [1, 2]}


# durable execution ------------------------------------------------------------------------
@ct.task(id="meta-parks")
def meta_parks(payload: Any) -> Any:
    ct.metadata.increment("before").append("log", "before")
    ct.tags.add("pre-wait")
    ct.wait.for_(seconds=1)
    ct.metadata.increment("after")
    return ct.metadata.current()


def test_writes_before_a_park_are_stored_then_not_repeated_by_replay(
    make_engine: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """D-17, DESIGN §4, META-2: the park flushes (interval 60 s, so nothing else could), the
    resumed attempt reads the writes back, and replaying the code before the wait applies
    neither the metadata writes nor ``tags.add`` again."""
    engine = make_engine(wait_threshold=0.5, metadata_flush_interval=60)
    caplog.set_level(logging.ERROR, logger="celery_trigger")
    with engine.worker():
        # Given a run that writes, tags itself and parks on a 1 s wait
        handle = meta_parks.trigger(None)
        wait_for_status(handle.id, "WAITING")
        # Then the writes made before the wait are already stored while it is parked
        assert stored(handle.id) == {"before": 1, "log": ["before"]}
        run = wait_for_status(handle.id)
    # And after the resume (replay) they were not applied a second time
    assert run.status is ct.RunStatus.COMPLETED, run.error
    assert run.metadata == {"before": 1, "log": ["before"], "after": 1} == run.output
    assert run.tags == ["pre-wait"] and run.attempt_count == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@ct.task(id="meta-replayed")
def meta_replayed(payload: Any) -> Any:
    ct.metadata.set("mutated", True)
    return "ok"


def test_replay_gets_the_seed_metadata_not_the_live_document(engine: Engine) -> None:
    """RUNS-8, §8.3: a run whose metadata changed while running is replayed with the
    trigger-time (seed) metadata."""
    with engine.worker():
        original = wait_for_status(meta_replayed.trigger(None, metadata={"seed": 1}).id)
    assert original.metadata == {"seed": 1, "mutated": True}
    # No worker is running here, so nothing can mutate the replay before we read it.
    replayed = ct.runs.replay(original.id)
    assert ct.runs.retrieve(replayed.id).metadata == {"seed": 1}
    with engine.worker():
        assert wait_for_status(replayed.id).metadata == {"seed": 1, "mutated": True}


@ct.task(id="meta-async")
async def meta_async(payload: Any) -> Any:
    ct.metadata.set("a", 1).append("l", "x")
    ct.metadata.parent.increment("self_as_parent")
    return ct.metadata.current()


def test_async_run_functions_use_metadata_like_sync_ones(engine: Engine) -> None:
    """META-1, META-9 (async run functions): the local copy and the targets work the same."""
    with engine.worker():
        run = wait_for_status(meta_async.trigger(None).id)
    assert run.output == {"a": 1, "l": ["x"]}
    assert run.metadata == {"a": 1, "l": ["x"], "self_as_parent": 1}
