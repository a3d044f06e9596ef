"""The Celery task events of a run that parks and resumes (issue 3 item 2), as any event
consumer sees them: a real event receiver feeds ``celery.events.state.State`` (the class
monitors build on) and the test checks the sequence and the final state of the task id.
A real Flower process is driven in ``test_flower.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from celery.events.state import State

import celery_trigger as ct

from .conftest import Engine, wait_for, wait_for_status


@ct.task(id="fl-child")
def fl_child(payload: dict) -> int:
    return int(payload["n"]) + 1


@ct.task(id="fl-parent")
def fl_parent(payload: dict) -> int:
    return int(fl_child.trigger_and_wait({"n": payload["n"]}).unwrap()) * 10


class EventLog:
    def __init__(self, engine: Engine) -> None:
        self.state = State()
        self.events: list[dict[str, Any]] = []
        self._engine = engine
        self._ready = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self._engine.app.connection() as conn:

            def on_event(event: dict[str, Any]) -> None:
                self.events.append(event)
                self.state.event(event)

            receiver = self._engine.app.events.Receiver(conn, handlers={"*": on_event})
            self._ready.set()
            while not self._stop:
                try:
                    receiver.capture(limit=None, timeout=0.2, wakeup=False)
                except TimeoutError:
                    continue
                except Exception:  # socket timeouts surface as various kombu errors
                    continue

    def __enter__(self) -> EventLog:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join(5)

    def types_for(self, task_id: str) -> list[str]:
        return [e["type"] for e in self.events if e.get("uuid") == task_id]


@pytest.fixture
def event_engine(make_engine: Any) -> Iterator[Engine]:
    engine = make_engine()
    engine.app.conf.worker_send_task_events = True
    engine.app.conf.task_send_sent_event = False
    yield engine


def test_parked_run_shows_retry_then_resumes_under_the_same_task_id(event_engine: Engine) -> None:
    """Issue 3 §2, STATUS-3: RETRY with the wait reason, then RECEIVED → STARTED → SUCCEEDED
    under the same id, with the attempt number as ``retries`` and the lineage kept."""
    with EventLog(event_engine) as log, event_engine.worker(concurrency=2):
        # Given a parent that waits for a child
        handle = fl_parent.trigger({"n": 4})
        run = wait_for_status(handle.id, timeout=30)
        assert run.output == 50
        # Then the parent's events show a park (retried) and a resume that succeeded
        wait_for(lambda: "task-succeeded" in log.types_for(handle.id), timeout=10)
        types = log.types_for(handle.id)
        # Two deliveries of the same id. The resume's "received" can overtake the parked
        # delivery's "retried" (different threads send them), so compare order loosely.
        assert sorted(types) == sorted(
            [
                "task-received",
                "task-started",
                "task-retried",
                "task-received",
                "task-started",
                "task-succeeded",
            ]
        )
        assert types[:2] == ["task-received", "task-started"]
        assert types[-1] == "task-succeeded"
        assert types.index("task-retried") < len(types) - 1
        retried = next(
            e for e in log.events if e.get("uuid") == handle.id and e["type"] == "task-retried"
        )
        assert "waiting for fl-child" in retried["exception"]
        task = log.state.tasks[handle.id]
        assert task.state == "SUCCESS"
        assert task.retries == 1
        # And the child carries the parent as its Celery parent and root
        child_id = run.children[0]
        child = log.state.tasks.get(child_id)
        assert child is not None and child.parent_id == handle.id and child.root_id == handle.id
