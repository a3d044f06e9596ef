"""Idempotency keys: derivation, scopes across parent retries, TTLs, waits on cached runs,
batch keys and reset (SEMANTICS §5, IDEM-1, 2, 5, 8..14, D-16).

IDEM-3/4/6/7 (cached owners by status, per-task keys) are in ``test_trigger.py``; the
concurrent-trigger races are in ``test_idempotency_race.py``.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections import Counter
from typing import Any

import pytest

import celery_trigger as ct
from tests.helpers import redis_client

from .conftest import Engine, wait_for, wait_for_status

RETRY3 = {"max_attempts": 3, "min_timeout_in_ms": 10, "max_timeout_in_ms": 10, "randomize": False}
RUNS: Counter[str] = Counter()
SEEN: dict[str, list[Any]] = {}
GATES: dict[str, threading.Event] = {}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def runs_of(task_id: str) -> list[ct.Run]:
    return list(ct.runs.list(task_identifier=task_id, limit=100))


@ct.task(id="idem-child")
def idem_child(payload: Any) -> Any:
    RUNS[str(payload.get("tag") if isinstance(payload, dict) else payload)] += 1
    if isinstance(payload, dict) and payload.get("gate"):
        if not GATES[payload["gate"]].wait(15):
            raise TimeoutError("gate never opened")
    return {"echo": payload}


# derivation ---------------------------------------------------------------------------
def test_create_outside_a_run_is_global(engine: Engine) -> None:
    """IDEM-1, IDEM-2 (outside): global scope hashes the parts joined with ``-``; outside a run
    every scope is global; the key remembers its parts and scope."""
    assert ct.idempotency_keys.create("k", scope="global") == sha("k")
    assert ct.idempotency_keys.create(["a", "b"], scope="global") == sha("a-b")
    key = ct.idempotency_keys.create("k")
    assert key == ct.idempotency_keys.create("k", scope="attempt") == sha("k")
    assert isinstance(key, ct.IdempotencyKey) and key.user_key == "k" and key.scope == "run"
    for bad, error in (
        ("", ValueError),
        ([], TypeError),
        ([1], TypeError),
        ("x" * 2049, ValueError),
    ):
        with pytest.raises(error):
            ct.idempotency_keys.create(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scope"):
        ct.idempotency_keys.create("k", scope="forever")


@ct.task(id="idem-derive", retry=RETRY3)
def idem_derive(payload: Any, ctx: ct.Context) -> dict[str, str]:
    if ctx.attempt.number == 1:
        raise RuntimeError("first attempt fails")
    return {
        "run": ct.idempotency_keys.create("k"),
        "attempt": ct.idempotency_keys.create("k", scope="attempt"),
        "list": ct.idempotency_keys.create(["a", "b"]),
        "global": ct.idempotency_keys.create("k", scope="global"),
    }


def test_create_inside_a_run_adds_the_run_id_and_attempt(engine: Engine) -> None:
    """IDEM-2: in run R, ``create("k")`` = sha256("k-R"); on attempt 2 the attempt scope is
    sha256("k-R-2"); a list keeps its order; global adds nothing."""
    with engine.worker():
        run = wait_for_status(idem_derive.trigger(None).id)
    rid = run.id
    assert run.output == {
        "run": sha(f"k-{rid}"),
        "attempt": sha(f"k-{rid}-2"),
        "list": sha(f"a-b-{rid}"),
        "global": sha("k"),
    }


# retries of the parent ----------------------------------------------------------------
@ct.task(id="idem-parent-retried", retry=RETRY3)
def idem_parent_retried(payload: dict[str, Any], ctx: ct.Context) -> None:
    key: Any = payload["key"]
    if payload["scope"] == "attempt":
        key = ct.idempotency_keys.create(key, scope="attempt")
    handle = idem_child.trigger({"tag": payload["tag"]}, idempotency_key=key)
    SEEN.setdefault(payload["tag"], []).append((handle.id, handle.is_cached))
    raise RuntimeError(f"attempt {ctx.attempt.number} fails after triggering")


@pytest.mark.parametrize(("scope", "children"), [("run", 1), ("attempt", 3)])
def test_parent_retried_three_times_gets_one_child_per_key_scope(
    engine: Engine, scope: str, children: int
) -> None:
    """IDEM-8 (run-scoped raw key → one child across 3 attempts), IDEM-9 (attempt scope →
    three children)."""
    tag = f"retried-{scope}-{uuid.uuid4().hex[:6]}"
    with engine.worker():
        # When a parent triggers a keyed child and fails, on each of its 3 attempts
        parent = wait_for_status(
            idem_parent_retried.trigger({"key": "send-email", "scope": scope, "tag": tag}).id
        )
        wait_for(lambda: RUNS[tag] == children, timeout=10)
    # Then the children created match the scope, and later attempts got cached handles
    assert parent.status is ct.RunStatus.FAILED and parent.attempt_count == 3
    created = [r for r in runs_of("idem-child") if r.payload == {"tag": tag}]
    assert len(created) == children and RUNS[tag] == children
    handles = SEEN[tag]
    assert len({h for h, _ in handles}) == children
    assert [cached for _, cached in handles] == (
        [False, True, True] if children == 1 else [False, False, False]
    )


# waiting on cached runs --------------------------------------------------------------------
@ct.task(id="idem-waiter")
def idem_waiter(payload: dict[str, Any]) -> dict[str, Any]:
    key = ct.idempotency_keys.create(payload["key"], scope="global")
    result = idem_child.trigger_and_wait(payload["child"], idempotency_key=key)
    return {"ok": result.ok, "id": result.id, "output": result.output}


def test_trigger_and_wait_on_a_completed_cached_run_returns_its_output(engine: Engine) -> None:
    """IDEM-10: the parent resumes with ``{ok: true, output: X, id: <old id>}`` and the child
    does not execute again (its second payload is never used)."""
    key = f"done-{uuid.uuid4().hex[:6]}"
    with engine.worker():
        # Given a completed run owning a global key
        first = idem_child.trigger(
            {"tag": key}, idempotency_key=ct.idempotency_keys.create(key, scope="global")
        )
        wait_for_status(first.id, "COMPLETED")
        # When a parent trigger_and_waits with the same key and another payload
        parent = wait_for_status(idem_waiter.trigger({"key": key, "child": {"tag": "never"}}).id)
    # Then it got the stored result of the first run
    assert parent.output == {"ok": True, "id": first.id, "output": {"echo": {"tag": key}}}
    assert RUNS[key] == 1 and RUNS["never"] == 0
    assert len(runs_of("idem-child")) == 1


def test_trigger_and_wait_on_a_running_cached_run_waits_for_it(engine: Engine) -> None:
    """§5.2, IDEM-10: a cached run still executing: the parent parks and resumes with its
    result when it finishes."""
    key = f"busy-{uuid.uuid4().hex[:6]}"
    GATES[key] = threading.Event()
    with engine.worker(concurrency=4):
        # Given a run with a global key, blocked while executing
        first = idem_child.trigger(
            {"tag": key, "gate": key},
            idempotency_key=ct.idempotency_keys.create(key, scope="global"),
        )
        wait_for_status(first.id, "EXECUTING")
        # When a parent waits on the same key
        parent = idem_waiter.trigger({"key": key, "child": {"tag": "never"}})
        wait_for_status(parent.id, "WAITING")
        GATES[key].set()
        run = wait_for_status(parent.id, timeout=20)
    # Then it resumed with the first run's output
    assert run.output == {"ok": True, "id": first.id, "output": {"echo": {"tag": key, "gate": key}}}
    assert RUNS["never"] == 0


# raw keys ------------------------------------------------------------------------------
@ct.task(id="idem-raw-parent")
def idem_raw_parent(payload: dict[str, Any]) -> dict[str, Any]:
    handle = idem_child.trigger({"tag": payload["tag"]}, idempotency_key=payload["key"])
    return {"child": handle.id, "cached": handle.is_cached}


@pytest.mark.parametrize(("length", "deduplicated"), [(64, True), (63, False)])
def test_a_64_character_raw_key_is_global_a_63_character_one_run_scoped(
    engine: Engine, length: int, deduplicated: bool
) -> None:
    """IDEM-11: a 64-char raw key used by two parent runs deduplicates across them; a 63-char
    raw key does not (it is run-scoped)."""
    raw = ("k" * 70)[:length]
    tag = f"raw-{length}-{uuid.uuid4().hex[:6]}"
    with engine.worker():
        one = wait_for_status(idem_raw_parent.trigger({"key": raw, "tag": tag}).id)
        two = wait_for_status(idem_raw_parent.trigger({"key": raw, "tag": tag}).id)
    assert (one.output["child"] == two.output["child"]) is deduplicated
    assert two.output["cached"] is deduplicated
    child = ct.runs.retrieve(one.output["child"])
    assert child.idempotency_key == raw


# ttl ---------------------------------------------------------------------------------
def test_key_ttl_is_recorded_and_applied(engine: Engine) -> None:
    """IDEM-14: ``idempotency_key_ttl="5m"`` records expiry ≈ now + 5 min (and the Redis key
    expires then); without a TTL ≈ now + 30 days."""
    before = int(time.time() * 1000)
    short = idem_child.trigger({"tag": "ttl"}, idempotency_key="ttl-5m", idempotency_key_ttl="5m")
    default = idem_child.trigger({"tag": "ttl"}, idempotency_key="ttl-default")
    raw = redis_client(engine.store)
    for handle, ttl_ms in ((short, 300_000), (default, 30 * 86400_000)):
        record = engine.store.get_run(handle.id)
        assert abs(int(record["idem_exp"]) - (before + ttl_ms)) < 5_000
        pttl = raw.pttl(engine.store.keys.idempotency("idem-child", record["idem_key"]))
        assert ttl_ms - 5_000 < pttl <= ttl_ms


def test_after_the_key_ttl_a_new_run_is_created(engine: Engine) -> None:
    """IDEM-5 (with a 1 s TTL): once the key expired, the same key creates a new run."""
    first = idem_child.trigger({"tag": "exp"}, idempotency_key="short", idempotency_key_ttl="1s")
    key = engine.store.get_run(first.id)["idem_key"]
    wait_for(lambda: engine.store.idempotency_owner("idem-child", key) is None, timeout=5)
    second = idem_child.trigger({"tag": "exp"}, idempotency_key="short")
    assert second.id != first.id and not second.is_cached


@pytest.mark.parametrize("ttl", ["1h30m", "2w", "1.5h", "", "10", "-1s", 0])
def test_bad_ttl_raises_at_the_call_and_creates_nothing(engine: Engine, ttl: Any) -> None:
    """G-4 (stricter, D-13): a TTL outside ``<int><s|m|h|d>`` raises ValueError; nothing is
    written (also as a batch option)."""
    with pytest.raises(ValueError):
        idem_child.trigger({}, idempotency_key="k", idempotency_key_ttl=ttl)
    with pytest.raises(ValueError):
        idem_child.batch_trigger([{"payload": 1}], idempotency_key="b", idempotency_key_ttl=ttl)
    assert redis_client(engine.store).zcard(engine.store.keys.by_created()) == 0


# batches ---------------------------------------------------------------------------------
@ct.task(id="idem-batcher")
def idem_batcher(payload: dict[str, Any]) -> dict[str, Any]:
    items = [{"payload": {"tag": f"{payload['tag']}-{i}"}} for i in range(3)]
    key = payload["key"]
    if payload.get("derived"):
        key = ct.idempotency_keys.create(key)
    first = idem_child.batch_trigger(items, idempotency_key=key)
    again = idem_child.batch_trigger(items, idempotency_key=key)
    return {
        "first": [first.batch_id, first.is_cached, first.runs],
        "again": [again.batch_id, again.is_cached, again.runs],
    }


def test_repeated_batch_key_in_a_run_returns_the_cached_batch(engine: Engine) -> None:
    """IDEM-12: ``batch_trigger`` with key "b" and 3 items, repeated in the same run, returns
    the same batch id with ``is_cached`` and creates no new runs."""
    tag = f"b-{uuid.uuid4().hex[:6]}"
    with engine.worker():
        run = wait_for_status(idem_batcher.trigger({"key": "b", "tag": tag}).id)
    first, again = run.output["first"], run.output["again"]
    assert first[1] is False and again[1] is True
    assert again[0] == first[0] and again[2] == first[2]
    assert len([r for r in runs_of("idem-child") if r.payload["tag"].startswith(tag)]) == 3
    assert ct.batch.retrieve(first[0])["idempotency_key"] == "b"


@ct.task(id="idem-item-keys")
def idem_item_keys(payload: dict[str, Any]) -> list[str]:
    key: Any = payload.get("key")
    if payload.get("derived"):
        key = ct.idempotency_keys.create(key)
    items: list[Any] = [
        {"payload": {"tag": "i0"}},
        {"payload": {"tag": "i1"}},
        {"payload": {"tag": "i2"}, "options": {"idempotency_key": "own"}},
    ]
    return idem_child.batch_trigger(items, idempotency_key=key).runs


def test_items_get_keys_derived_from_the_batch_key(engine: Engine) -> None:
    """IDEM-12a: in run R a raw batch key "b" gives item i sha256("b-i-R"); a batch key made
    by ``create`` (hash H) gives sha256("H-i-R"); an item's own "own" uses sha256("own-R");
    without a batch key, items without their own key have none."""
    with engine.worker():
        raw = wait_for_status(idem_item_keys.trigger({"key": "b"}).id)
        derived = wait_for_status(idem_item_keys.trigger({"key": "b", "derived": True}).id)
        none = wait_for_status(idem_item_keys.trigger({}).id)

    def keys(run: ct.Run) -> list[str | None]:
        return [engine.store.get_run(r).get("idem_key") for r in run.output]

    r1, r2, r3 = raw.id, derived.id, none.id
    h = sha(f"b-{r2}")
    assert keys(raw) == [sha(f"b-0-{r1}"), sha(f"b-1-{r1}"), sha(f"own-{r1}")]
    assert keys(derived) == [sha(f"{h}-0-{r2}"), sha(f"{h}-1-{r2}"), sha(f"own-{r2}")]
    assert keys(none) == [None, None, sha(f"own-{r3}")]
    assert ct.runs.retrieve(raw.output[0]).idempotency_key == "b-0"


def test_batch_key_outside_a_run_is_cached_and_the_ttl_reaches_the_items(engine: Engine) -> None:
    """IDEM-12, §5.3: from backend code a repeat returns the cached batch without creating
    runs; the batch TTL is the items' default key TTL."""
    items = [
        {"payload": {"tag": "bk"}},
        {"payload": {"tag": "bk"}, "options": {"idempotency_key_ttl": "1h"}},
    ]
    first = ct.tasks.batch_trigger(
        "idem-child", items, idempotency_key="bk", idempotency_key_ttl="10m"
    )
    again = ct.batch.trigger(
        [{"id": "idem-child", "payload": {"tag": "other"}}], idempotency_key="bk"
    )
    assert not first.is_cached and again.is_cached
    assert (again.batch_id, again.runs) == (first.batch_id, first.runs)
    assert redis_client(engine.store).zcard(engine.store.keys.by_created()) == 2
    now = int(time.time() * 1000)
    exps = [int(engine.store.get_run(r)["idem_exp"]) - now for r in first.runs]
    assert abs(exps[0] - 600_000) < 5_000 and abs(exps[1] - 3_600_000) < 5_000


@ct.task(id="idem-batch-waiter", retry=RETRY3)
def idem_batch_waiter(payload: dict[str, Any], ctx: ct.Context) -> str:
    result = idem_child.batch_trigger_and_wait(
        [{"payload": {"tag": f"{payload['tag']}-{i}"}} for i in range(2)], idempotency_key="bw"
    )
    SEEN.setdefault(payload["tag"], []).append((result.id, [r.id for r in result]))
    if ctx.attempt.number == 1:
        raise RuntimeError("fail after the batch")
    return result.id


def test_parent_retry_reattaches_to_the_cached_batch_and_its_runs(engine: Engine) -> None:
    """D-16, OQ-23: a repeated ``batch_trigger_and_wait`` with the same batch key on the
    parent's second attempt waits on the first attempt's batch; no new runs."""
    tag = f"bw-{uuid.uuid4().hex[:6]}"
    with engine.worker(concurrency=4):
        run = wait_for_status(idem_batch_waiter.trigger({"tag": tag}).id, timeout=30)
    assert run.status is ct.RunStatus.COMPLETED and run.attempt_count == 2
    (batch1, runs1), (batch2, runs2) = SEEN[tag]
    assert batch1 == batch2 == run.output and runs1 == runs2
    assert len([r for r in runs_of("idem-child") if r.payload["tag"].startswith(tag)]) == 2


# reset ---------------------------------------------------------------------------------------
@ct.task(id="idem-keyed-parent")
def idem_keyed_parent(payload: dict[str, Any]) -> dict[str, Any]:
    first = idem_child.trigger({"tag": "keyed"}, idempotency_key="x")
    out: dict[str, Any] = {"first": first.id}
    if payload.get("reset_inside"):
        out["reset"] = ct.idempotency_keys.reset("idem-child", "x")
        out["second"] = idem_child.trigger({"tag": "keyed"}, idempotency_key="x").id
    return out


def test_reset_lets_the_next_trigger_create_a_new_run(engine: Engine) -> None:
    """IDEM-13, §5.4: after reset the same key creates a new run; a 64-char key or a created
    key is used as is; an unused key raises RunNotFoundError (HTTP 404 upstream)."""
    first = idem_child.trigger({"tag": "r"}, idempotency_key="r")
    assert ct.idempotency_keys.reset("idem-child", "r", scope="global") == {"id": sha("r")}
    assert ct.runs.retrieve(first.id).idempotency_key is None
    second = idem_child.trigger({"tag": "r"}, idempotency_key="r")
    assert second.id != first.id and not second.is_cached
    # And a key from create, passed as is
    created = ct.idempotency_keys.create("c", scope="global")
    idem_child.trigger({"tag": "c"}, idempotency_key=created)
    assert ct.idempotency_keys.reset("idem-child", created) == {"id": created}
    with pytest.raises(ct.RunNotFoundError):
        ct.idempotency_keys.reset("idem-child", created)
    with pytest.raises(ct.RunNotFoundError):
        ct.idempotency_keys.reset("idem-child", "never-used", scope="global")


def test_reset_rebuilds_run_scoped_keys_from_the_parent_run(engine: Engine) -> None:
    """IDEM-13, §5.4: a run-scoped key is rebuilt with ``parent_run_id`` outside the run, or
    from ``ctx`` inside it; without either, the call raises."""
    with engine.worker():
        outside = wait_for_status(idem_keyed_parent.trigger({}).id)
        inside = wait_for_status(idem_keyed_parent.trigger({"reset_inside": True}).id)
    with pytest.raises(ValueError, match="parent_run_id is required"):
        ct.idempotency_keys.reset("idem-child", "x")
    with pytest.raises(ValueError, match="attempt_number is required"):
        ct.idempotency_keys.reset("idem-child", "x", scope="attempt", parent_run_id=outside.id)
    assert ct.idempotency_keys.reset("idem-child", "x", parent_run_id=outside.id) == {
        "id": sha(f"x-{outside.id}")
    }
    assert inside.output["reset"] == {"id": sha(f"x-{inside.id}")}
    assert inside.output["second"] != inside.output["first"]


@ct.task(id="idem-expiring", ttl="1s")
def idem_expiring(payload: Any) -> Any:
    return payload


def test_expiry_releases_only_a_key_the_run_still_owns(engine: Engine) -> None:
    """§5.2 (expired owners), IDEM-13: a run whose key was reset and taken by a new run
    expires without releasing the new owner's key."""
    from celery_trigger._engine.timers import TimerService

    old = idem_expiring.trigger(None, idempotency_key="e")
    ct.idempotency_keys.reset("idem-expiring", "e", scope="global")
    new = idem_expiring.trigger(None, idempotency_key="e", delay="1h")
    service = TimerService(engine.trigger)
    service.start()
    try:
        wait_for_status(old.id, "EXPIRED", timeout=10)
    finally:
        service.stop()
    again = idem_expiring.trigger(None, idempotency_key="e")
    assert again.id == new.id and again.is_cached
