"""Durable execution basics: trigger_and_wait, waits, tokens park and resume the run."""

from __future__ import annotations

import celery_trigger as ct

from .conftest import Engine, wait_for, wait_for_status

EVENTS: list[str] = []


@ct.task(id="du-child")
def du_child(payload: dict) -> dict:
    if payload.get("fail"):
        raise ValueError("boom")
    return {"double": payload["n"] * 2}


@ct.task(id="du-parent")
def du_parent(payload: dict, ctx: ct.Context) -> dict:
    EVENTS.append(f"start:{ctx.attempt.number}:{ctx.is_replaying}")
    first = du_child.trigger_and_wait({"n": payload["n"]})
    second = du_child.trigger_and_wait({"n": 1, "fail": True})
    return {
        "first": first.unwrap(),
        "second_ok": second.ok,
        "second_error": second.error.message if second.error else None,
        "attempt": ctx.attempt.number,
    }


def test_parent_waits_for_children_and_resumes(engine: Engine) -> None:
    """TRIG-3, TRIG-4, STATUS-3: child results reach the parent in the same attempt."""
    EVENTS.clear()
    with engine.worker(concurrency=2):
        handle = du_parent.trigger({"n": 21})
        run = wait_for_status(handle.id, timeout=30)
    assert run.status == ct.RunStatus.COMPLETED, run.error
    assert run.output == {
        "first": {"double": 42},
        "second_ok": False,
        "second_error": "boom",
        "attempt": 1,
    }
    assert EVENTS[0] == "start:1:False"
    assert all(e.startswith("start:1:") for e in EVENTS)


@ct.task(id="du-sleeper")
def du_sleeper(payload: dict, ctx: ct.Context) -> str:
    ct.wait.for_(seconds=1.5)
    return "woke"


def test_duration_wait_parks_and_resumes(make_engine) -> None:  # type: ignore[no-untyped-def]
    """WAIT-2 (scaled: threshold 0.5 s): the run is WAITING, then COMPLETED."""
    engine = make_engine(wait_threshold=0.5)
    with engine.worker(concurrency=1):
        handle = du_sleeper.trigger(None)
        wait_for_status(handle.id, "WAITING")
        run = wait_for_status(handle.id, timeout=20)
    assert run.output == "woke"


@ct.task(id="du-approval")
def du_approval(payload: dict) -> dict:
    token = ct.wait.create_token(timeout="1h")
    ct.metadata_token = token.id  # type: ignore[attr-defined]
    result = ct.wait.for_token(token)
    return {"ok": result.ok, "output": result.output}


def test_token_wait_resumes_when_completed(engine: Engine) -> None:
    """WAIT-9: a token completed from outside resumes the run with its data."""
    with engine.worker(concurrency=1):
        handle = du_approval.trigger(None)
        wait_for_status(handle.id, "WAITING")
        token_id = wait_for(lambda: getattr(ct, "metadata_token", None))
        assert ct.wait.retrieve_token(token_id).status == "WAITING"
        ct.wait.complete_token(token_id, {"approved": True})
        run = wait_for_status(handle.id, timeout=20)
    assert run.output == {"ok": True, "output": {"approved": True}}
