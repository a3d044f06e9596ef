"""Waitpoint tokens: create, wait, complete (first wins), time out, idempotency, read.

Runs parked on a token resume when it is completed or times out (SEMANTICS §7.2, D-7, D-15).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

import celery_trigger as ct
from tests.helpers import redis_client

from .conftest import Engine, wait_for, wait_for_status

# also run with the broker on another Redis database and on RabbitMQ (tests/brokers.py)
pytestmark = pytest.mark.brokers

COUNTS: Counter[str] = Counter()


@ct.task(id="dt-waiter")
def dt_waiter(payload: dict) -> dict:
    COUNTS["waiter"] += 1
    token = payload.get("token") or ct.wait.create_token(timeout=payload.get("timeout")).id
    result = ct.wait.for_token(token)
    out: dict[str, Any] = {"token": token, "ok": result.ok, "output": result.output}
    if result.error is not None:
        out["error"] = {
            "type": type(result.error).__name__,
            "message": str(result.error),
            "is_timeout": isinstance(result.error, ct.WaitpointTimeoutError),
        }
        try:
            result.unwrap()
        except ct.WaitpointTimeoutError as exc:
            out["unwrap_raised"] = str(exc)
    return out


def test_token_timeout_resumes_the_run_with_a_timeout_error(engine: Engine) -> None:
    """WAIT-8: a token with timeout "1s" resolves ok False with a WaitpointTimeoutError
    "Waitpoint timed out at …"; unwrap raises it; the token reads TIMED_OUT."""
    with engine.worker(concurrency=1):
        # Given a run waiting on a token that times out after 1 s
        handle = dt_waiter.trigger({"timeout": "1s"})
        wait_for_status(handle.id, "WAITING")
        # When the timeout passes
        run = wait_for_status(handle.id, timeout=15)
    # Then the run resumed with the timeout error
    assert run.status == ct.RunStatus.COMPLETED, run.error
    error = run.output["error"]
    assert run.output["ok"] is False and run.output["output"] is None
    assert error["is_timeout"] and error["type"] == "WaitpointTimeoutError"
    assert error["message"].startswith("Waitpoint timed out at ")
    assert run.output["unwrap_raised"] == error["message"]
    record = ct.wait.retrieve_token(run.output["token"])
    assert record.status == "TIMED_OUT" and record.output is None
    assert isinstance(record.error, ct.WaitpointTimeoutError)
    assert str(record.error) == error["message"]


def test_completion_before_or_after_the_wait_gives_the_output(engine: Engine) -> None:
    """WAIT-9: complete_token then for_token, and for_token then complete_token, both yield
    ok True with the data."""
    early = ct.wait.create_token()
    late = ct.wait.create_token()
    with engine.worker(concurrency=2):
        # Given a token completed before anyone waits on it
        assert ct.wait.complete_token(early, {"a": 1}) == {"success": True}
        # When a run waits on it, and another on a token completed afterwards
        first = dt_waiter.trigger({"token": early.id})
        second = dt_waiter.trigger({"token": late.id})
        wait_for_status(second.id, "WAITING")
        ct.wait.complete_token(late.id, {"a": 2})
        # Then both get their data
        assert wait_for_status(first.id).output["output"] == {"a": 1}
        assert wait_for_status(second.id).output["output"] == {"a": 2}
    assert ct.runs.retrieve(first.id).output["ok"] is True


def test_first_completion_wins_and_a_timed_out_token_stays_timed_out(engine: Engine) -> None:
    """WAIT-10: completing twice returns success both times and the waiter sees the first
    data; completing a timed-out token returns success and it stays TIMED_OUT."""
    token = ct.wait.create_token()
    expiring = ct.wait.create_token(timeout="1s")
    with engine.worker(concurrency=1):
        # Given a run parked on a token
        handle = dt_waiter.trigger({"token": token.id})
        wait_for_status(handle.id, "WAITING")
        # When it is completed twice with different data
        assert ct.wait.complete_token(token, {"n": 1}) == {"success": True}
        assert ct.wait.complete_token(token, {"n": 2}) == {"success": True}
        # Then the first data is what the run and the token show
        assert wait_for_status(handle.id).output["output"] == {"n": 1}
        assert ct.wait.retrieve_token(token).output == {"n": 1}
        # And a token that timed out stays timed out when completed later
        wait_for(lambda: ct.wait.retrieve_token(expiring).status == "TIMED_OUT")
    assert ct.wait.complete_token(expiring, {"late": True}) == {"success": True}
    record = ct.wait.retrieve_token(expiring)
    assert record.status == "TIMED_OUT" and record.output is None


def test_token_idempotency_key_returns_the_same_token_until_its_ttl(engine: Engine) -> None:
    """WAIT-11, D-15: the same raw key gives the same id (is_cached False then True); after
    idempotency_key_ttl "1s" a new token is created."""
    # Given a token created with a key and a 1 s key TTL
    first = ct.wait.create_token(idempotency_key="x", idempotency_key_ttl="1s")
    # When it is created again with the same key
    again = ct.wait.create_token(idempotency_key="x", idempotency_key_ttl="1s")
    # Then it is the same token, cached
    assert (first.is_cached, again.is_cached) == (False, True) and again.id == first.id
    assert ct.wait.retrieve_token(first).idempotency_key == "x"
    # And after the TTL the key makes a new token
    fresh = wait_for(
        lambda: (
            (t := ct.wait.create_token(idempotency_key="x", idempotency_key_ttl="1s")).id
            != first.id
            and t
        ),
        timeout=5,
    )
    assert fresh.is_cached is False and fresh.id.startswith("waitpoint_")


def test_retrieve_and_list_show_status_and_output(engine: Engine) -> None:
    """WAIT-13: retrieve_token reads WAITING, then COMPLETED with output; list_tokens(status=
    "COMPLETED") includes it without output."""
    # Given a token with a tag
    token = ct.wait.create_token(tags=["order:13"], timeout="1h")
    record = ct.wait.retrieve_token(token.id)
    assert record.status == "WAITING" and record.output is None
    assert record.tags == ["order:13"] and record.timeout_at is not None
    assert record.url == token.url and record.created_at is not None
    # When it is completed
    ct.wait.complete_token(token, {"approved": True})
    # Then retrieve shows the output and list shows it without output
    done = ct.wait.retrieve_token(token)
    assert done.status == "COMPLETED" and done.output == {"approved": True}
    assert done.completed_at is not None
    listed = ct.wait.list_tokens(status="COMPLETED")
    assert [t.id for t in listed] == [token.id] and listed[0].output is None
    assert ct.wait.list_tokens(status="WAITING") == []
    assert [t.id for t in ct.wait.list_tokens(tags="order:13")] == [token.id]


def test_more_than_ten_tags_are_rejected(engine: Engine) -> None:
    """WAIT-14: create_token with 11 tags raises ValueError and creates nothing."""
    with pytest.raises(ValueError, match="Waitpoints can only have 10 tags"):
        ct.wait.create_token(tags=[f"t{i}" for i in range(11)])
    assert ct.wait.list_tokens() == []
    assert len(ct.wait.create_token(tags=[f"t{i}" for i in range(10)]).id) > 10


def test_many_runs_waiting_on_one_token_all_resume(engine: Engine) -> None:
    """WAIT-15: two runs parked on the same token both resume when it is completed."""
    token = ct.wait.create_token()
    with engine.worker(concurrency=2):
        # Given two runs parked on one token
        handles = [dt_waiter.trigger({"token": token.id}) for _ in range(2)]
        for handle in handles:
            wait_for_status(handle.id, "WAITING")
        # When it is completed once
        ct.wait.complete_token(token, "go")
        # Then both resume with its output
        outputs = [wait_for_status(h.id).output["output"] for h in handles]
    assert outputs == ["go", "go"]


def test_token_without_timeout_never_times_out(engine: Engine) -> None:
    """WAIT-16, D-7: a token without timeout stays WAITING: no timeout timer exists, and its
    idempotency key never expires."""
    with engine.worker(concurrency=1):
        # Given a run parked on a token created without a timeout
        handle = dt_waiter.trigger({"token": ct.wait.create_token(idempotency_key="d7").id})
        wait_for_status(handle.id, "WAITING")
    token_id = ct.runs.retrieve(handle.id).payload["token"]
    # Then nothing will ever time it out
    record = ct.wait.retrieve_token(token_id)
    assert record.status == "WAITING" and record.timeout_at is None
    assert engine.store.timer_due(f"tokento|{token_id}") is None
    assert record.idempotency_key_expires_at is None
    assert redis_client(engine.store).pttl(engine.store.keys.token_idempotency("d7")) == -1
    assert ct.runs.retrieve(handle.id).status == ct.RunStatus.WAITING


@ct.task(id="dt-keyed-creator")
def dt_keyed_creator(payload: str) -> dict:
    token = ct.wait.create_token(idempotency_key=payload)
    return {"id": token.id, "cached": token.is_cached}


@ct.task(id="dt-named")
def dt_named(payload: str) -> Any:
    return ct.wait.for_token(payload).output


def test_token_keys_are_raw_and_shared_across_runs_and_outside(engine: Engine) -> None:
    """D-15, §7.2: a token key is raw and environment-wide: a run and code outside any run
    that use the same key share one token; for_token(name) waits on the token of that key."""
    with engine.worker(concurrency=2):
        # Given a token created inside a run with key "shared"
        inside = wait_for_status(dt_keyed_creator.trigger("shared").id).output
        # When code outside any run, and another task, use the same key
        outside = ct.wait.create_token(idempotency_key="shared")
        other = wait_for_status(dt_keyed_creator.trigger("shared").id).output
        # Then they all get the same token
        assert inside["cached"] is False and outside.is_cached and other["cached"]
        assert inside["id"] == outside.id == other["id"]
        # And a run waiting on the key by name resumes when that token completes
        handle = dt_named.trigger("shared")
        wait_for_status(handle.id, "WAITING")
        ct.wait.complete_token(outside, {"named": True})
        assert wait_for_status(handle.id).output == {"named": True}
    assert (
        redis_client(engine.store).get(engine.store.keys.token_idempotency("shared")) == outside.id
    )


@ct.task(id="dt-twice")
def dt_twice(payload: None) -> list[Any]:
    COUNTS["twice"] += 1
    first = ct.wait.create_token()
    a = ct.wait.for_token(first).output
    second = ct.wait.create_token()
    b = ct.wait.for_token(second).output
    return [first.id, a, second.id, b]


def test_tokens_created_in_a_run_keep_their_ids_across_resumes(engine: Engine) -> None:
    """D-17, §7.2: create_token inside a run is journaled: after each resume the same token
    ids come back, so two sequential token waits resume the run twice."""
    COUNTS.clear()
    with engine.worker(concurrency=1):
        # Given a run parked on its first token
        handle = dt_twice.trigger(None)
        wait_for_status(handle.id, "WAITING")
        first = ct.wait.list_tokens()[0]
        # When that token and then the second one are completed
        ct.wait.complete_token(first, 1)
        wait_for(
            lambda: (
                len(ct.wait.list_tokens(status="WAITING")) == 1
                and ct.runs.retrieve(handle.id).status == ct.RunStatus.WAITING
            )
        )
        ct.wait.complete_token(ct.wait.list_tokens(status="WAITING")[0], 2)
        run = wait_for_status(handle.id)
    # Then the run saw both outputs and only two tokens exist
    assert run.output[1] == 1 and run.output[3] == 2
    assert sorted(t.id for t in ct.wait.list_tokens()) == sorted([run.output[0], run.output[2]])
    assert COUNTS["twice"] == 3
