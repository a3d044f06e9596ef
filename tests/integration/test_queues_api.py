"""The queues API: list, retrieve, pause, resume (SEMANTICS §6.1), and the dynamic queues a
trigger creates or updates (``queue={"name": ..., "concurrency_limit": ...}``)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import celery_trigger as ct

from .conftest import Engine, wait_for, wait_for_status

GATE = threading.Event()
EMAILS = ct.queue(name="tqa-emails", concurrency_limit=2)


@ct.task(id="tqa-send", queue=EMAILS)
def tqa_send(payload: Any) -> None:
    GATE.wait(20)


@ct.task(id="tqa-plain")
def tqa_plain(payload: Any) -> None:
    GATE.wait(20)


@pytest.fixture(autouse=True)
def _fresh() -> None:
    GATE.clear()


def test_retrieve_counts_running_and_queued_runs(engine: Engine) -> None:
    """§6.1: retrieve gives running, queued, paused and concurrency_limit."""
    with engine.worker(concurrency=4):
        # Given three runs on a limit-2 queue whose runs block
        handles = [tqa_send.trigger(None) for _ in range(3)]
        for h in handles[:2]:
            wait_for_status(h.id, "EXECUTING")
        # When the queue is retrieved
        info = wait_for(lambda: (q := ct.queues.retrieve("tqa-emails")).queued == 1 and q)
        # Then two hold slots and one waits
        assert (
            info.name,
            info.type,
            info.running,
            info.queued,
            info.paused,
            info.concurrency_limit,
        ) == ("tqa-emails", "custom", 2, 1, False, 2)
        GATE.set()
        for h in handles:
            wait_for_status(h.id)
    assert ct.queues.retrieve(EMAILS).running == 0


def test_list_pages_through_known_queues_by_name(engine: Engine) -> None:
    """§6.1: list returns every known queue: code-defined, dynamic, and tasks' own queues."""
    # Given a dynamic queue created by a trigger
    tqa_plain.trigger(None, queue={"name": "tqa-dynamic", "concurrency_limit": 4})
    # When every page is listed, and the first one with one queue per page
    pages = [ct.queues.list(page=n, per_page=50) for n in range(1, 100)]
    everything = [q for page in pages for q in page]
    names = [q.name for q in everything]
    first = ct.queues.list(page=1, per_page=1)
    # Then each kind is there, sorted, and pages hold per_page queues until they run out
    assert {"tqa-emails", "tqa-dynamic", "task/tqa-plain"} <= set(names)
    assert names == sorted(set(names))
    assert [q.name for q in first] == names[:1]
    assert all(len(page) == 50 for page in pages[: len(names) // 50])
    dynamic = next(q for q in everything if q.name == "tqa-dynamic")
    assert dynamic.concurrency_limit == 4 and dynamic.type == "custom"
    assert ct.queues.retrieve({"type": "task", "name": "tqa-plain"}).type == "task"


def test_a_trigger_updates_a_dynamic_queue_limit(engine: Engine) -> None:
    """API.md (seed form): ``queue={"name": ..., "concurrency_limit": n}`` creates the queue
    or updates its limit; runs of it obey the latest limit."""
    with engine.worker(concurrency=4):
        # Given a dynamic queue created with limit 1 and a run holding its slot
        first = tqa_plain.trigger(None, queue={"name": "tqa-user-1", "concurrency_limit": 1})
        wait_for_status(first.id, "EXECUTING")
        # When another trigger raises its limit to 2
        second = tqa_plain.trigger(None, queue={"name": "tqa-user-1", "concurrency_limit": 2})
        # Then the second run starts beside the first
        wait_for_status(second.id, "EXECUTING")
        assert ct.queues.retrieve("tqa-user-1").running == 2
        GATE.set()
        for h in (first, second):
            assert wait_for_status(h.id).status == ct.RunStatus.COMPLETED


def test_unknown_queue_raises_queue_not_found(engine: Engine) -> None:
    """§6.1: retrieve/pause/resume of a queue nobody defined raise QueueNotFoundError and
    create nothing."""
    for call in (ct.queues.retrieve, ct.queues.pause, ct.queues.resume):
        with pytest.raises(ct.QueueNotFoundError, match="no-such-queue"):
            call("no-such-queue")
    assert engine.store.get_queue("no-such-queue") is None


@pytest.mark.parametrize(
    "call, error",
    [
        (lambda: ct.queues.retrieve(7), TypeError),
        (lambda: ct.queues.retrieve(""), TypeError),
        (lambda: ct.queues.retrieve({"type": "nope", "name": "x"}), ValueError),
        (lambda: ct.queues.list(page=0), ValueError),
        (lambda: ct.queues.list(per_page=101), ValueError),
        (lambda: ct.queues.list(per_page=True), ValueError),
    ],
)
def test_bad_queue_arguments_raise_typed_errors(
    engine: Engine, call: Any, error: type[Exception]
) -> None:
    """§6.1, API.md: bad arguments raise at the call."""
    with pytest.raises(error):
        call()


def test_environment_limit_setting_is_validated(make_engine: Any) -> None:
    """``trigger_concurrency_limit`` must be a positive integer (or None)."""
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(ct.ConfigurationError, match="trigger_concurrency_limit"):
            make_engine(concurrency_limit=bad)
