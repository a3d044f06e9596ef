"""Realtime subscriptions and streams (SEMANTICS §12.1, RT-1..RT-4, META-2) against a real
Redis and a real worker.

Subscriptions are consumed in a helper thread (``Collector``) so that a test never hangs: the
main thread waits for a condition with a deadline and unsubscribes on the way out.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from celery import Celery

import celery_trigger as ct
from celery_trigger import _setup
from celery_trigger._engine import subscriptions
from celery_trigger._engine.hub import hub_for
from celery_trigger.status import RunStatus
from tests.helpers import wait_for
from tests.integration.conftest import Engine, wait_for_status

ORDER = {"QUEUED": 0, "DEQUEUED": 1, "EXECUTING": 2, "WAITING": 2, "COMPLETED": 3}
gates: dict[str, threading.Event] = {}


def gate(name: str) -> threading.Event:
    return gates.setdefault(name, threading.Event())


class Collector:
    """Iterate a subscription in a thread; ``items`` fills as it yields."""

    def __init__(self, sub: Any) -> None:
        self.sub = sub
        self.items: list[Any] = []
        self.ended = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            for item in self.sub:
                self.items.append(item)
        except BaseException as exc:  # surfaced by the test
            self.error = exc
        finally:
            self.ended.set()

    def until(self, predicate: Callable[[list[Any]], Any], timeout: float = 15.0) -> Any:
        return wait_for(lambda: predicate(list(self.items)) or self.error, timeout=timeout)

    def close(self) -> None:
        self.sub.unsubscribe()
        assert self.ended.wait(10), "the subscription did not end after unsubscribe()"
        assert self.error is None, self.error


@pytest.fixture
def collect() -> Iterator[Callable[[Any], Collector]]:
    made: list[Collector] = []

    def factory(sub: Any) -> Collector:
        made.append(Collector(sub))
        return made[-1]

    yield factory
    for c in made:
        c.sub.unsubscribe()
        c.ended.wait(10)


@ct.task(id="rt-progress")
def rt_progress(payload: Any) -> Any:
    for i in range(1, payload["steps"] + 1):
        ct.metadata.set("progress", i / payload["steps"])
        ct.metadata.flush()
    if payload.get("gate"):
        assert gate(payload["gate"]).wait(15)
    return {"done": True}


@ct.task(id="rt-streamer")
def rt_streamer(payload: Any) -> Any:
    text = "".join(ct.metadata.stream("llm", [f"t{i} " for i in range(payload["n"])]))
    if payload.get("gate"):
        assert gate(payload["gate"]).wait(15)
    return text


@ct.task(id="rt-async-streamer")
async def rt_async_streamer(payload: Any) -> Any:
    async def tokens() -> Any:
        for i in range(3):
            yield {"i": i}

    return [c async for c in ct.metadata.stream("events", tokens())]


@ct.task(id="rt-child-streams-to-parent")
def rt_child(payload: Any) -> Any:
    for _ in ct.metadata.parent.stream("from-child", ["x", "y"]):
        pass
    return "child"


@ct.task(id="rt-parent")
def rt_parent(payload: Any) -> Any:
    return rt_child.trigger_and_wait({}).unwrap()


@ct.task(id="rt-durable-streamer")
def rt_durable_streamer(payload: Any) -> Any:
    for _ in ct.metadata.stream("log", ["before-1", "before-2"]):
        pass
    ct.wait.for_(seconds=1)
    for _ in ct.metadata.stream("log", ["after"]):
        pass
    return "ok"


def statuses(items: list[Any]) -> list[str]:
    return [r.status.value for r in items]


def test_run_subscription_yields_states_in_order_and_ends(
    engine: Engine, collect: Callable[[Any], Collector]
) -> None:
    """RT-1, RT-2: current state first, statuses never backwards, progress seen, ends after
    the final object (finished_at set)."""
    handle = rt_progress.trigger({"steps": 5})
    c = collect(ct.runs.subscribe_to_run(handle.id))
    c.until(lambda items: items)  # the current state, before any worker runs
    assert c.items[0].status is RunStatus.QUEUED
    with engine.worker():
        assert c.ended.wait(15)
    assert c.error is None
    seen = statuses(c.items)
    assert seen == sorted(seen, key=ORDER.__getitem__), seen
    assert seen[-1] == "COMPLETED" and c.items[-1].finished_at is not None
    assert c.items[-1].output == {"done": True}
    progress = [(r.metadata or {}).get("progress") for r in c.items]
    assert 1 in progress
    assert len({id(r) for r in c.items}) == len(c.items)
    for a, b in zip(c.items, c.items[1:], strict=False):
        assert a != b  # nothing yielded twice


def test_metadata_change_reaches_a_subscriber_while_running(
    engine: Engine, collect: Callable[[Any], Collector]
) -> None:
    """RT-2 / META-2: a metadata.set inside the running task arrives as a new object."""
    with engine.worker():
        handle = rt_progress.trigger({"steps": 2, "gate": "meta2"})
        c = collect(ct.runs.subscribe_to_run(handle.id))
        c.until(lambda items: any((r.metadata or {}).get("progress") == 1 for r in items))
        assert not c.ended.is_set()  # the run is still going: the subscription is open
        assert ct.runs.retrieve(handle.id).metadata == {"progress": 1}
        gate("meta2").set()
        assert c.ended.wait(15)
    assert c.items[-1].status is RunStatus.COMPLETED


def test_stop_on_completion_false_keeps_receiving(
    engine: Engine, collect: Callable[[Any], Collector]
) -> None:
    """RT-1: with stop_on_completion=False the subscription stays open after completion and
    sees metadata written afterwards (here through the runs API, as a child would)."""
    with engine.worker():
        run = wait_for_status(rt_progress.trigger({"steps": 1}).id)
    c = collect(ct.runs.subscribe_to_run(run.id, stop_on_completion=False))
    c.until(lambda items: items and items[-1].status is RunStatus.COMPLETED)
    ct.runs.update_metadata(run.id, operations=[{"type": "set", "key": "late", "value": 1}])
    c.until(lambda items: (items[-1].metadata or {}).get("late") == 1)
    assert not c.ended.is_set()
    c.close()


def test_tag_subscription_needs_every_tag(
    engine: Engine, collect: Callable[[Any], Collector]
) -> None:
    """RT-3: runs tagged only "a" are not yielded for ["a", "b"]; runs existing at subscribe
    time, created later, and given the missing tag later all are."""
    before = rt_progress.trigger({"steps": 1}, tags=["a", "b"])
    only_a = rt_progress.trigger({"steps": 1}, tags=["a"])
    c = collect(ct.runs.subscribe_to_runs_with_tag(["a", "b"]))
    c.until(lambda items: any(r.id == before.id for r in items))
    after = rt_progress.trigger({"steps": 1}, tags=["b", "a", "c"])
    with engine.worker():
        for h in (before, after, only_a):
            wait_for_status(h.id)
        c.until(
            lambda items: (
                {r.id for r in items if r.status is RunStatus.COMPLETED} >= {before.id, after.id}
            )
        )
    assert only_a.id not in {r.id for r in c.items}
    ct.runs.update_metadata(only_a.id, operations=[{"type": "set", "key": "x", "value": 1}])
    assert only_a.id not in {r.id for r in c.items}
    # tags.add from inside a run is the other way a run joins; the store op is the same
    engine.store.add_tags(only_a.id, ["b"], 10)
    c.until(lambda items: any(r.id == only_a.id for r in items))
    for r in c.items:
        assert {"a", "b"} <= set(r.tags)
    # per run, states never go backwards
    for run_id in {r.id for r in c.items}:
        seen = [r.status.value for r in c.items if r.id == run_id]
        assert seen == sorted(seen, key=ORDER.__getitem__), seen
    c.close()


def test_tag_subscription_window(engine: Engine, collect: Callable[[Any], Collector]) -> None:
    """created_at: runs created before the window are left out, new ones come in."""
    old = rt_progress.trigger({"steps": 1}, tags=["win"])
    wait_for(lambda: ct.runs.retrieve(old.id).created_at is not None)
    c = collect(ct.runs.subscribe_to_runs_with_tag("win", created_at=0.001))
    new = rt_progress.trigger({"steps": 1}, tags=["win"])
    wait_for(lambda: any(r.id == new.id for r in c.items))
    assert old.id not in {r.id for r in c.items}
    c.close()


def test_tag_subscription_lists_existing_runs_across_index_pages(
    engine: Engine, collect: Callable[[Any], Collector], monkeypatch: pytest.MonkeyPatch
) -> None:
    """RT-3: the runs a tag subscription starts with are listed page by page from the tag's
    index; every one is yielded when there are more than one page of them."""
    # Given five runs with the tag and index pages of two
    monkeypatch.setattr(subscriptions, "TAG_PAGE", 2)
    ids = {rt_progress.trigger({"steps": 1}, tags=["paged"]).id for _ in range(5)}
    # When a subscription to the tag starts
    c = collect(ct.runs.subscribe_to_runs_with_tag("paged"))
    # Then it yields each of them
    c.until(lambda items: {r.id for r in items} >= ids)
    assert c.error is None and {r.id for r in c.items} == ids
    c.close()


def test_batch_subscription(engine: Engine, collect: Callable[[Any], Collector]) -> None:
    """subscribe_to_batch yields every run of the batch up to its final state."""
    batch = rt_progress.batch_trigger([{"payload": {"steps": 1}} for _ in range(4)])
    c = collect(ct.runs.subscribe_to_batch(batch.batch_id))
    with engine.worker():
        c.until(lambda items: len({r.id for r in items if r.status is RunStatus.COMPLETED}) == 4)
    assert {r.batch_id for r in c.items} == {batch.batch_id}
    c.close()


def test_with_streams_yields_the_run_then_every_chunk_in_order(
    engine: Engine, collect: Callable[[Any], Collector]
) -> None:
    """RT-4: a "run" part comes before the first chunk; chunks in order; a late reader gets
    the whole stream from the start."""
    with engine.worker():
        handle = rt_streamer.trigger({"n": 20})
        c = collect(ct.runs.subscribe_to_run(handle.id).with_streams())
        assert c.ended.wait(15)
    assert c.error is None
    types = [p.type for p in c.items]
    assert types[0] == "run"
    assert types.index("llm") > 0
    chunks = [p.chunk for p in c.items if p.type == "llm"]
    assert chunks == [f"t{i} " for i in range(20)]
    assert all(p.run.id == handle.id for p in c.items)
    assert c.items[-1].type in ("run", "llm")
    run = ct.runs.retrieve(handle.id)
    assert run.realtime_streams == ["llm"] and run.output == "".join(chunks)
    late = list(ct.runs.subscribe_to_run(handle.id).with_streams())
    assert [p.chunk for p in late if p.type == "llm"] == chunks
    assert late[0].type == "run" and late[0].run.status is RunStatus.COMPLETED


def test_cursor_resumes_without_repeats(engine: Engine) -> None:
    """A new subscription given ``cursor`` continues after the last chunk taken."""
    with engine.worker():
        run = wait_for_status(rt_streamer.trigger({"n": 6}).id)
    sub = ct.runs.subscribe_to_run(run.id).with_streams()
    first = [next(sub) for _ in range(4)]  # the run, then t0..t2
    cursor = sub.cursor
    sub.unsubscribe()
    assert [p.chunk for p in first if p.type == "llm"] == ["t0 ", "t1 ", "t2 "]
    rest = list(ct.runs.subscribe_to_run(run.id, cursor=cursor).with_streams())
    assert [p.chunk for p in rest if p.type == "llm"] == ["t3 ", "t4 ", "t5 "]
    with pytest.raises(ValueError, match="cursor"):
        ct.runs.subscribe_to_run(run.id, cursor="not-a-cursor!")


def test_async_iteration_and_async_streams(engine: Engine) -> None:
    """``async for`` over a subscription; ``metadata.stream`` over an async iterable."""
    with engine.worker():
        handle = rt_async_streamer.trigger({})

        async def consume() -> list[Any]:
            async with ct.runs.subscribe_to_run(handle.id).with_streams() as sub:
                return [p async for p in sub]

        parts = asyncio.run(asyncio.wait_for(consume(), 15))
    assert [p.chunk for p in parts if p.type == "events"] == [{"i": i} for i in range(3)]
    assert parts[-1].run.status is RunStatus.COMPLETED or parts[-1].type == "events"
    assert ct.runs.retrieve(handle.id).output == [{"i": i} for i in range(3)]


def test_child_streams_to_its_parent(engine: Engine) -> None:
    """metadata.parent.stream writes to the parent's stream."""
    with engine.worker():
        parent = wait_for_status(rt_parent.trigger({}).id)
    assert parent.realtime_streams == ["from-child"]
    parts = list(ct.runs.subscribe_to_run(parent.id).with_streams())
    assert [p.chunk for p in parts if p.type == "from-child"] == ["x", "y"]


def test_resumed_run_does_not_stream_twice(make_engine: Callable[..., Engine]) -> None:
    """A run that parks and resumes replays its code; chunks already sent are not repeated."""
    engine = make_engine(wait_threshold=0.5)
    with engine.worker():
        run = wait_for_status(rt_durable_streamer.trigger({}).id, timeout=20)
    assert run.status is RunStatus.COMPLETED
    parts = list(ct.runs.subscribe_to_run(run.id).with_streams())
    assert [p.chunk for p in parts if p.type == "log"] == ["before-1", "before-2", "after"]


def test_unsubscribe_ends_a_waiting_iteration_and_frees_the_hub(
    engine: Engine, collect: Callable[[Any], Collector]
) -> None:
    handle = rt_progress.trigger({"steps": 1})
    hub = hub_for(engine.trigger)
    c = collect(ct.runs.subscribe_to_run(handle.id))
    c.until(lambda items: items)
    assert hub.watched >= 1
    c.close()
    assert c.items[0].status is RunStatus.QUEUED
    wait_for(lambda: hub.watched == 0)
    with ct.runs.subscribe_to_run(handle.id) as sub:
        assert next(sub).id == handle.id
    assert list(sub) == []


def test_subscriber_survives_a_dropped_connection(
    engine: Engine, collect: Callable[[Any], Collector], redis_server: str
) -> None:
    """The hub's pub/sub connection is killed; once it is back the subscription resyncs and
    sees the change made meanwhile (nothing missed)."""
    handle = rt_progress.trigger({"steps": 1})
    c = collect(ct.runs.subscribe_to_run(handle.id, stop_on_completion=False))
    c.until(lambda items: items)
    admin = redis.Redis.from_url(f"{redis_server}/0", decode_responses=True)
    try:

        def blocked() -> list[str]:  # the hub's pub/sub connection (flag P)
            return [cl["id"] for cl in admin.client_list() if "P" in cl.get("flags", "")]

        ids = wait_for(blocked)
        for client_id in ids:
            admin.client_kill_filter(_id=client_id)
        ct.runs.update_metadata(handle.id, operations=[{"type": "set", "key": "k", "value": 2}])
        c.until(lambda items: (items[-1].metadata or {}).get("k") == 2)
    finally:
        admin.close()
    c.close()


def test_skip_columns_and_bad_input(engine: Engine) -> None:
    """skip_columns leaves heavy fields out; bad input fails at the call."""
    handle = rt_progress.trigger({"steps": 1, "big": "x" * 100})
    with ct.runs.subscribe_to_run(handle.id, skip_columns=["payload", "output"]) as sub:
        first = next(sub)
    assert first.payload is None and first.task_identifier == "rt-progress"
    with pytest.raises(ct.RunNotFoundError):
        ct.runs.subscribe_to_run("run_missing")
    with pytest.raises(ct.RunNotFoundError):
        ct.runs.subscribe_to_batch("batch_missing")
    with pytest.raises(ValueError, match="unknown column"):
        ct.runs.subscribe_to_run(handle.id, skip_columns=["nope"])
    with pytest.raises(ValueError, match="cannot be skipped"):
        ct.runs.subscribe_to_run(handle.id, skip_columns=["id"])
    with pytest.raises(TypeError):
        ct.runs.subscribe_to_run(handle.id, skip_columns="payload")
    with pytest.raises(ValueError, match="1 week"):
        ct.runs.subscribe_to_runs_with_tag("a", created_at="8d")
    with pytest.raises(ValueError, match="at least one tag"):
        ct.runs.subscribe_to_runs_with_tag([])
    with pytest.raises(TypeError):
        ct.runs.subscribe_to_runs_with_tag([1])  # type: ignore[list-item]
    sub = ct.runs.subscribe_to_run(handle.id)
    next(sub)
    with pytest.raises(RuntimeError, match="before iterating"):
        sub.with_streams()
    sub.unsubscribe()


def test_stream_bad_input_fails_at_the_call() -> None:
    with pytest.raises(TypeError):
        ct.metadata.stream("", [1])
    with pytest.raises(TypeError):
        ct.metadata.stream("k", "not an iterable of chunks")
    assert list(ct.metadata.stream("k", [1, 2])) == [1, 2]  # outside a run: pass-through


def test_embedded_mode_subscription() -> None:
    """MemoryStore (embedded mode, memory:// broker) serves subscriptions and streams too."""
    app = Celery("rt-embedded", broker="memory://", backend="cache+memory://", set_as_current=False)
    app.conf.worker_hijack_root_logger = False
    ct.setup(app, store="memory", timer_poll_interval=0.02)
    from celery.contrib.testing.worker import start_worker

    try:
        with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False):
            handle = rt_streamer.trigger({"n": 3})
            parts = list(ct.runs.subscribe_to_run(handle.id).with_streams())
        assert [p.chunk for p in parts if p.type == "llm"] == ["t0 ", "t1 ", "t2 "]
        assert parts[0].type == "run"
        runs = [p.run for p in parts if p.type == "run"]
        assert runs[-1].status is RunStatus.COMPLETED
    finally:
        _setup.reset()


def test_skipping_realtime_streams_still_yields_chunks(engine: Engine) -> None:
    """skip_columns hides fields of the yielded runs only; streams are still followed."""
    with engine.worker():
        run = wait_for_status(rt_streamer.trigger({"n": 2}).id)
    sub = ct.runs.subscribe_to_run(run.id, skip_columns=["realtime_streams", "payload"])
    parts = list(sub.with_streams())
    assert [p.chunk for p in parts if p.type == "llm"] == ["t0 ", "t1 "]
    assert all(p.run.realtime_streams == [] and p.run.payload is None for p in parts)


def test_many_subscribers_to_one_run_each_see_every_change_in_order(
    engine: Engine, collect: Callable[[Any], Collector]
) -> None:
    """Subscriptions of one process share their reads of a run (one read per change); each
    still sees the current state first, never goes back, and ends with the final state."""
    handle = rt_progress.trigger({"steps": 1})
    subs = [collect(ct.runs.subscribe_to_run(handle.id)) for _ in range(20)]
    for c in subs:
        c.until(lambda items: items)
    for i in range(1, 6):
        ct.runs.update_metadata(handle.id, operations=[{"type": "set", "key": "n", "value": i}])
    for c in subs:
        c.until(lambda items: (items[-1].metadata or {}).get("n") == 5)
    with engine.worker():
        for c in subs:
            assert c.ended.wait(15)
    for c in subs:
        assert c.error is None
        ns = [(r.metadata or {}).get("n", 0) for r in c.items]
        assert ns == sorted(ns), ns
        seen = statuses(c.items)
        assert seen == sorted(seen, key=ORDER.__getitem__), seen
        assert c.items[-1].status is RunStatus.COMPLETED


def _subscribe_in_child(run_id: str, out: Any) -> None:
    from celery_trigger._setup import current

    with ct.runs.subscribe_to_run(run_id, stop_on_completion=False) as sub:
        first = next(sub)
        hub = hub_for(current())
        thread = hub._thread
        out.put((first.id, hub.pid == os.getpid(), thread is not None and thread.is_alive()))


def test_a_forked_process_gets_its_own_hub(
    engine: Engine, collect: Callable[[Any], Collector]
) -> None:
    """Threads do not survive a fork (prefork pool processes): a child that subscribes gets a
    hub of its own with a live thread, not the parent's dead one."""
    handle = rt_progress.trigger({"steps": 1})
    c = collect(ct.runs.subscribe_to_run(handle.id, stop_on_completion=False))
    c.until(lambda items: items)
    assert hub_for(engine.trigger)._thread is not None
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_subscribe_in_child, args=(handle.id, out))
    child.start()
    try:
        assert out.get(timeout=15) == (handle.id, True, True)
    finally:
        child.join(15)
    assert child.exitcode == 0
    c.close()
