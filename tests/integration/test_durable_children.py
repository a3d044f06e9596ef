"""Durable execution, children: trigger_and_wait, batch waits, cancel, nesting, concurrency.

Every parent here parks (status WAITING, no worker held) while its children run and resumes in
the same attempt by replaying its journal (DESIGN §4, SEMANTICS §3.3-3.5, D-16, D-17).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

import celery_trigger as ct

from .conftest import Engine, wait_for, wait_for_status

# also run with the broker on another Redis database and on RabbitMQ (tests/brokers.py)
pytestmark = pytest.mark.brokers

FAST = {"max_attempts": 2, "min_timeout_in_ms": 50, "max_timeout_in_ms": 50, "randomize": False}
FAST3 = {**FAST, "max_attempts": 3}
COUNTS: Counter[str] = Counter()
GATE = threading.Event()
IDS: dict[int, list[str]] = {}


def _result(r: ct.Result[Any]) -> dict[str, Any]:
    return {
        "ok": r.ok,
        "id": r.id,
        "task_identifier": r.task_identifier,
        "output": r.output,
        "error": r.error.message if r.error else None,
    }


@ct.task(id="dc-child", retry=FAST)
def dc_child(payload: dict) -> dict:
    COUNTS[f"child:{payload['n']}"] += 1
    if payload.get("gate"):
        GATE.wait(10)
    if payload.get("fail"):
        raise ValueError("boom")
    return {"foo": payload["n"]}


@ct.task(id="dc-token-child")
def dc_token_child(payload: dict) -> Any:
    COUNTS["token-child"] += 1
    return ct.wait.for_token(payload["token"]).output


@ct.task(id="dc-parent")
def dc_parent(payload: dict) -> dict:
    result = dc_child.trigger_and_wait(payload)
    out = _result(result)
    try:
        result.unwrap()
    except ct.SubtaskUnwrapError as exc:
        out["unwrap"] = {
            "message": str(exc),
            "run_id": exc.run_id,
            "cause": exc.cause.message if exc.cause else None,
        }
    return out


def test_child_output_reaches_the_waiting_parent(make_engine) -> None:  # type: ignore[no-untyped-def]
    """TRIG-3: a child returning {foo: 1} gives ok, its id, its task id and the output."""
    engine = make_engine(wait_threshold=0.5)
    with engine.worker(concurrency=2):
        # Given a parent that waits for one child
        handle = dc_parent.trigger({"n": 1})
        # When the child completes
        run = wait_for_status(handle.id)
    # Then the parent resumed with the child's result
    assert run.status == ct.RunStatus.COMPLETED, run.error
    child_id = ct.runs.retrieve(handle.id).children[0]
    assert run.output == {
        "ok": True,
        "id": child_id,
        "task_identifier": "dc-child",
        "output": {"foo": 1},
        "error": None,
    }


def test_failed_child_gives_ok_false_after_its_last_attempt(make_engine) -> None:  # type: ignore[no-untyped-def]
    """TRIG-4: ok False with message "boom" after the child's last attempt; unwrap raises
    SubtaskUnwrapError "Error in dc-child: boom" with run_id and cause."""
    engine = make_engine(wait_threshold=0.5)
    COUNTS.clear()
    with engine.worker(concurrency=2):
        # Given a child that throws on each of its 2 attempts
        handle = dc_parent.trigger({"n": 4, "fail": True})
        # When the parent resumes
        run = wait_for_status(handle.id)
    # Then it sees the failure of the child's final attempt, not the first
    child = ct.runs.retrieve(ct.runs.retrieve(handle.id).children[0])
    assert child.status == ct.RunStatus.FAILED and child.attempt_count == 2
    assert COUNTS["child:4"] == 2
    assert run.finished_at >= child.finished_at
    assert run.output["ok"] is False and run.output["error"] == "boom"
    assert run.output["unwrap"] == {
        "message": "Error in dc-child: boom",
        "run_id": child.id,
        "cause": "boom",
    }


@ct.task(id="dc-concurrent", retry=FAST3)
async def dc_concurrent(payload: dict) -> str:
    COUNTS["concurrent"] += 1
    # asyncio.to_thread copies the context, so both calls run inside this run.
    await asyncio.gather(
        asyncio.to_thread(dc_token_child.trigger_and_wait, {"token": payload["token"]}),
        asyncio.to_thread(dc_token_child.trigger_and_wait, {"token": payload["token"]}),
    )
    return "unreachable"


def test_two_waits_in_parallel_end_the_run_system_failure(make_engine) -> None:  # type: ignore[no-untyped-def]
    """TRIG-6, §3.4, §7.3: two trigger_and_wait in asyncio.gather → SYSTEM_FAILURE with
    TASK_DID_CONCURRENT_WAIT, not retried; the child already triggered stays alive."""
    engine = make_engine(wait_threshold=0.5)
    COUNTS.clear()
    token = ct.wait.create_token()
    with engine.worker(concurrency=2):
        # Given a parent (3 attempts allowed) that gathers two waits
        handle = dc_concurrent.trigger({"token": token.id})
        # When it runs
        run = wait_for_status(handle.id)
        # Then it fails as a system failure on its first attempt, without a retry
        assert run.status == ct.RunStatus.SYSTEM_FAILURE
        assert run.error is not None and run.error.name == "TASK_DID_CONCURRENT_WAIT"
        assert "Parallel waits are not supported" in run.error.message
        assert run.attempt_count == 1 and COUNTS["concurrent"] == 1
        # And the child that was triggered is still alive and can finish
        children = ct.runs.retrieve(handle.id).children
        assert len(children) >= 1
        wait_for_status(children[0], "WAITING")
        ct.wait.complete_token(token, "done")
        assert wait_for_status(children[0]).output == "done"


@ct.task(id="dc-batch-parent")
def dc_batch_parent(payload: dict) -> dict:
    results = dc_child.batch_trigger_and_wait(
        [{"payload": {"n": 1}}, {"payload": {"n": 2, "fail": True}}, {"payload": {"n": 3}}]
    )
    return {
        "runs": [_result(r) for r in results],
        "len": len(results),
        "id": results.id,
        "continued": True,
    }


def test_batch_wait_returns_results_in_item_order(make_engine) -> None:  # type: ignore[no-untyped-def]
    """TRIG-7: a batch of 3 where item 2 fails gives 3 results in order, ok flags
    True/False/True, and the parent continues."""
    engine = make_engine(wait_threshold=0.5)
    with engine.worker(concurrency=4):
        # Given a parent waiting on a batch of three, the second of which fails
        handle = dc_batch_parent.trigger(None)
        # When every child is final
        run = wait_for_status(handle.id, timeout=30)
    # Then the results come in item order with the right ok flags
    assert run.status == ct.RunStatus.COMPLETED, run.error
    runs = run.output["runs"]
    assert run.output["len"] == 3 and run.output["continued"] is True
    assert [r["ok"] for r in runs] == [True, False, True]
    assert [r["output"] for r in runs] == [{"foo": 1}, None, {"foo": 3}]
    assert runs[1]["error"] == "boom"
    assert [r["id"] for r in runs] == ct.runs.retrieve(handle.id).children
    assert ct.runs.retrieve(runs[0]["id"]).batch_id == run.output["id"]


@ct.task(id="dc-cancel-parent")
def dc_cancel_parent(payload: dict) -> dict:
    COUNTS["cancel-parent"] += 1
    if payload.get("side"):
        dc_child.trigger({"n": 7})
        dc_token_child.trigger({"token": payload["token"]})
    return _result(dc_token_child.trigger_and_wait({"token": payload["token"]}))


def test_cancelling_a_waited_child_resumes_the_parent_with_ok_false(engine: Engine) -> None:
    """TRIG-21, RUNS-7: the parent resumes with ok False and "Canceled by user"; it is not
    cancelled itself."""
    token = ct.wait.create_token()
    with engine.worker(concurrency=2):
        # Given a parent parked on a child that is parked on a token
        handle = dc_cancel_parent.trigger({"token": token.id})
        wait_for_status(handle.id, "WAITING")
        child_id = ct.runs.retrieve(handle.id).children[0]
        wait_for_status(child_id, "WAITING")
        # When the child is cancelled
        ct.runs.cancel(child_id)
        run = wait_for_status(handle.id)
    # Then the parent completes and saw the cancellation as a failed result
    assert ct.runs.retrieve(child_id).status == ct.RunStatus.CANCELED
    assert run.status == ct.RunStatus.COMPLETED
    assert run.output["ok"] is False and run.output["id"] == child_id
    assert run.output["error"] == "Canceled by user"


def test_cancelling_a_parked_parent_cancels_its_children_and_it_never_resumes(
    engine: Engine,
) -> None:
    """RUNS-6, §11.3, issue §7: parent and both live children CANCELED (a finished child keeps
    COMPLETED); the cancelled parked parent never runs again."""
    COUNTS.clear()
    token = ct.wait.create_token()
    with engine.worker(concurrency=1):
        # Given a parked parent with a finished child, a live fire-and-forget child and a
        # waited-for child
        handle = dc_cancel_parent.trigger({"token": token.id, "side": True})
        wait_for_status(handle.id, "WAITING")
        done_id, side_id, waited_id = ct.runs.retrieve(handle.id).children
        wait_for_status(done_id, "COMPLETED")
        wait_for_status(side_id, "WAITING")
        wait_for_status(waited_id, "WAITING")
        # When the parent is cancelled
        ct.runs.cancel(handle.id)
        # Then it and its live children are CANCELED; the finished child keeps its status
        for run_id in (handle.id, side_id, waited_id):
            assert wait_for_status(run_id).status == ct.RunStatus.CANCELED
        assert ct.runs.retrieve(done_id).status == ct.RunStatus.COMPLETED
        # And completing what everything waited on resumes nobody
        ct.wait.complete_token(token, "late")
        marker = dc_child.trigger({"n": 99})
        wait_for_status(marker.id, "COMPLETED")
    assert ct.runs.retrieve(handle.id).status == ct.RunStatus.CANCELED
    assert COUNTS["cancel-parent"] == 1 and COUNTS["token-child"] == 2
    assert engine.store.timer_due(f"resume|{handle.id}") is None


BEFORE = threading.Event()
AFTER = threading.Event()


@ct.task(id="dc-gated-parent")
def dc_gated_parent(payload: dict, ctx: ct.Context) -> dict:
    before = ctx.attempt.number
    BEFORE.wait(10)
    result = dc_token_child.trigger_and_wait({"token": payload["token"]})
    AFTER.wait(10)
    return {"before": before, "after": ctx.attempt.number, "output": result.output}


def test_status_goes_executing_waiting_executing_completed_in_one_attempt(engine: Engine) -> None:
    """STATUS-3, D-17: EXECUTING until parked, WAITING, EXECUTING after the child finishes,
    then COMPLETED; ctx.attempt.number unchanged."""
    BEFORE.clear()
    AFTER.clear()
    token = ct.wait.create_token()
    seen: list[str] = []

    def observe(*wanted: str) -> None:
        def check() -> bool:
            status = ct.runs.retrieve(handle.id).status.value
            if not seen or seen[-1] != status:
                seen.append(status)
            return status in wanted

        wait_for(check, message=f"never saw {wanted}; saw {seen}")

    with engine.worker(concurrency=2):
        # Given a parent held before its wait
        handle = dc_gated_parent.trigger({"token": token.id})
        observe("EXECUTING")
        # When it reaches the wait, then its child finishes, then it completes
        BEFORE.set()
        observe("WAITING")
        ct.wait.complete_token(token, 5)
        observe("EXECUTING")
        AFTER.set()
        observe("COMPLETED")
    # Then the statuses came in that order and the attempt never changed
    assert [s for s in seen if s != "QUEUED"] == ["EXECUTING", "WAITING", "EXECUTING", "COMPLETED"]
    run = ct.runs.retrieve(handle.id)
    assert run.output == {"before": 1, "after": 1, "output": 5}
    assert run.attempt_count == 1


LIMIT1 = ct.queue(name="dc-limit-1", concurrency_limit=1)


@ct.task(id="dc-q-child", queue=LIMIT1)
def dc_q_child(payload: int) -> int:
    return payload + 1


@ct.task(id="dc-q-parent", queue=LIMIT1)
def dc_q_parent(payload: int) -> int:
    return dc_q_child.trigger_and_wait(payload).unwrap() * 10  # type: ignore[no-any-return]


def test_parent_and_child_on_a_limit_one_queue_do_not_deadlock(engine: Engine) -> None:
    """QUEUE-5 (issue "Done when"): a parent on a limit-1 queue waiting on a child of the same
    queue completes on a worker with one slot, because the parked parent holds none."""
    with engine.worker(concurrency=1):
        # Given one worker slot and a parent that waits for a child of its own queue
        handle = dc_q_parent.trigger(1)
        # When it runs, then the child runs in the slot the parked parent released
        run = wait_for_status(handle.id, timeout=20)
    assert run.status == ct.RunStatus.COMPLETED and run.output == 20


@ct.task(id="dc-fan")
def dc_fan(payload: dict) -> int:
    COUNTS["fan"] += 1
    results = dc_child.batch_trigger_and_wait(
        [{"payload": {"n": i, "gate": True}} for i in range(payload["count"])]
    )
    return sum(r.unwrap()["foo"] for r in results)


def test_a_batch_of_fifty_wakes_its_parent_once(engine: Engine) -> None:
    """Issue §3, DESIGN §4: a batch wait wakes the parent once, when its last child is final:
    the parent executes exactly twice (initial + one resume)."""
    COUNTS.clear()
    GATE.clear()
    with engine.worker(concurrency=4):
        # Given a parent parked on 50 children held at a gate
        handle = dc_fan.trigger({"count": 50})
        wait_for_status(handle.id, "WAITING")
        # When all children are released and finish concurrently
        GATE.set()
        run = wait_for_status(handle.id, timeout=30)
    # Then the parent resumed exactly once with every result
    assert run.status == ct.RunStatus.COMPLETED, run.error
    assert run.output == sum(range(50))
    assert COUNTS["fan"] == 2
    assert all(COUNTS[f"child:{i}"] == 1 for i in range(50))


@ct.task(id="dc-leaf")
def dc_leaf(payload: int) -> int:
    ct.wait.for_(seconds=0.8)
    return payload + 1


@ct.task(id="dc-mid")
def dc_mid(payload: int) -> int:
    return dc_leaf.trigger_and_wait(payload).unwrap() * 10  # type: ignore[no-any-return]


@ct.task(id="dc-grand")
def dc_grand(payload: int, ctx: ct.Context) -> dict:
    value = dc_mid.trigger_and_wait(payload).unwrap()
    return {"value": value, "attempt": ctx.attempt.number}


def test_nested_waits_resume_grandparent_parent_and_child(make_engine) -> None:  # type: ignore[no-untyped-def]
    """TRIG-3, D-17: grandparent → parent → child, each parked on the next, all resume."""
    engine = make_engine(wait_threshold=0.5)
    with engine.worker(concurrency=2):
        # Given three levels of waits, the innermost a parked duration wait
        handle = dc_grand.trigger(4)
        wait_for_status(handle.id, "WAITING")
        # When the leaf wakes and completes
        run = wait_for_status(handle.id, timeout=30)
    # Then every level resumed in its first attempt
    assert run.output == {"value": 50, "attempt": 1}
    mid = ct.runs.retrieve(ct.runs.retrieve(handle.id).children[0])
    leaf = ct.runs.retrieve(mid.children[0])
    assert (mid.status, leaf.status) == (ct.RunStatus.COMPLETED, ct.RunStatus.COMPLETED)
    assert (mid.depth, leaf.depth) == (1, 2) and leaf.root_id == handle.id
    assert mid.attempt_count == leaf.attempt_count == 1


@ct.task(id="dc-async-parent")
async def dc_async_parent(payload: dict, ctx: ct.Context) -> dict:
    COUNTS["async-parent"] += 1
    result = dc_token_child.trigger_and_wait({"token": payload["token"]})
    await asyncio.sleep(0)
    ct.wait.for_(seconds=0.8)
    return {"child": result.output, "attempt": ctx.attempt.number, "replaying": ctx.is_replaying}


def test_async_run_function_parks_and_resumes(make_engine) -> None:  # type: ignore[no-untyped-def]
    """TRIG-3, WAIT-2, D-17 for ``async def`` run functions: they park at a child wait and a
    duration wait and resume in the same attempt."""
    engine = make_engine(wait_threshold=0.5)
    COUNTS.clear()
    token = ct.wait.create_token()
    with engine.worker(concurrency=2):
        # Given an async parent parked on a child
        handle = dc_async_parent.trigger({"token": token.id})
        wait_for_status(handle.id, "WAITING")
        # When the child finishes and the following duration wait passes
        ct.wait.complete_token(token, {"a": 1})
        run = wait_for_status(handle.id, timeout=20)
    # Then it completed after two resumes
    assert run.status == ct.RunStatus.COMPLETED, run.error
    assert run.output == {"child": {"a": 1}, "attempt": 1, "replaying": False}
    assert COUNTS["async-parent"] == 3


@ct.task(id="dc-item")
def dc_item(payload: int) -> int:
    COUNTS[f"item:{payload}"] += 1
    return payload


@ct.task(id="dc-retried-batch", retry=FAST)
def dc_retried_batch(payload: None, ctx: ct.Context) -> list[int]:
    results = dc_item.batch_trigger_and_wait(
        [{"payload": i, "options": {"idempotency_key": f"item-{i}"}} for i in range(3)]
    )
    IDS[ctx.attempt.number] = [r.id for r in results]
    if ctx.attempt.number == 1:
        raise RuntimeError("fail after the batch")
    return [r.unwrap() for r in results]


def test_retried_parent_reattaches_to_the_same_children_by_idempotency_key(make_engine) -> None:  # type: ignore[no-untyped-def]
    """D-16, DESIGN §4 (the journal belongs to the attempt): a retry re-triggers the batch;
    per-item idempotency keys re-attach it to the children of attempt 1."""
    engine = make_engine(wait_threshold=0.5)
    COUNTS.clear()
    IDS.clear()
    with engine.worker(concurrency=2):
        # Given a parent whose first attempt fails after its batch wait
        handle = dc_retried_batch.trigger(None)
        # When the second attempt triggers the same batch again
        run = wait_for_status(handle.id, timeout=30)
    # Then it got the same child runs, each of which ran once
    assert run.status == ct.RunStatus.COMPLETED, run.error
    assert run.output == [0, 1, 2] and run.attempt_count == 2
    assert IDS[1] == IDS[2] and len(set(IDS[1])) == 3
    assert all(COUNTS[f"item:{i}"] == 1 for i in range(3))


HOOKS: list[tuple[str, dict[str, Any]]] = []


@ct.task(
    id="dc-hooked-parent",
    on_wait=lambda wait: HOOKS.append(("wait", dict(wait))),
    on_resume=lambda wait: HOOKS.append(("resume", dict(wait))),
)
def dc_hooked_parent(payload: dict) -> list[Any]:
    one = dc_token_child.trigger_and_wait({"token": payload["first"]})
    many = dc_token_child.batch_trigger_and_wait([{"payload": {"token": payload["second"]}}] * 2)
    return [one.output, [r.output for r in many]]


def test_child_waits_call_on_wait_and_on_resume_once_each(engine: Engine) -> None:
    """TASK-24, D-17 for child waits: on_wait before and on_resume after each real wait, once
    each, with the same description (type task with run_id, type batch with batch_id)."""
    HOOKS.clear()
    first, second = ct.wait.create_token(), ct.wait.create_token()
    with engine.worker(concurrency=3):
        # Given a parent parked on a child, then on a batch
        handle = dc_hooked_parent.trigger({"first": first.id, "second": second.id})
        wait_for_status(handle.id, "WAITING")
        ct.wait.complete_token(first, 1)
        wait_for(lambda: len(HOOKS) == 3 and ct.runs.retrieve(handle.id).is_waiting)
        # When the batch's children finish too
        ct.wait.complete_token(second, 2)
        run = wait_for_status(handle.id)
    # Then each wait fired its hooks exactly once, around it
    assert run.output == [1, [2, 2]]
    children = ct.runs.retrieve(handle.id).children
    task_info = {"type": "task", "run_id": children[0]}
    batch_info = {
        "type": "batch",
        "batch_id": ct.runs.retrieve(children[1]).batch_id,
        "run_count": 2,
    }
    assert HOOKS == [
        ("wait", task_info),
        ("resume", task_info),
        ("wait", batch_info),
        ("resume", batch_info),
    ]


def test_child_waits_are_only_possible_inside_a_run(engine: Engine) -> None:
    """TRIG-2, §7.1: trigger_and_wait, batch_trigger_and_wait, waits and steps.run raise
    outside a run."""
    token = ct.wait.create_token()
    calls = {
        "trigger_and_wait": lambda: dc_child.trigger_and_wait({"n": 1}),
        "batch_trigger_and_wait": lambda: dc_child.batch_trigger_and_wait([{"payload": 1}]),
        "wait.for_": lambda: ct.wait.for_(seconds=10),
        "wait.until": lambda: ct.wait.until(datetime.now(timezone.utc) + timedelta(hours=1)),
        "wait.for_token": lambda: ct.wait.for_token(token),
        "steps.run": lambda: ct.steps.run("s", lambda: 1),
    }
    for name, call in calls.items():
        with pytest.raises(RuntimeError, match=f"{name} can only be used from inside a task"):
            call()
    assert ct.runs.list().data == []
