"""The Store contract for concurrency slots (DESIGN §6), against RedisStore and MemoryStore.

A claim of a run whose queue has a limit takes a slot in the same atomic step, or puts the
run in its sub-queue's line (``Claim("drop", "queued")``, status unchanged). ``release_slot``
gives a slot back and hands it to the next run in line (lowest queued time - priority
first); the promoted run holds the slot before anyone publishes it. Slot leases lapse
without heartbeats and are reaped. Queues without a limit cost no slot work at all.
"""

from __future__ import annotations

from typing import Any

import pytest

from celery_trigger._keys import Keys
from celery_trigger._store.base import Claim, NewRun, SlotScope, Store
from celery_trigger._store.memory import MemoryStore
from tests.helpers import redis_client

NOW = 1_700_000_000_000
LEASE = 30_000
DELAY = 5_000


def create(
    store: Store,
    run_id: str,
    *,
    queue: str = "q",
    ckey: str = "",
    at: int = NOW,
    priority: int = 0,
    join: bool = True,
    env: int | None = None,
    **fields: str,
) -> None:
    record = {
        "id": run_id,
        "task": "t",
        "status": "QUEUED",
        "queue": queue,
        "queued_at": str(at),
        "priority": str(priority),
        "attempt": "0",
        **fields,
    }
    if ckey:
        record["ckey"] = ckey
    scope = SlotScope(queue, ckey, env) if join else None
    store.create_runs([NewRun(run_id, "t", record, join=scope)], at)


def claim(
    store: Store,
    run_id: str,
    *,
    now: int = NOW + 10,
    hint: str = "q",
    env: int | None = None,
    token: str | None = None,
) -> Claim:
    return store.claim_attempt(
        run_id, token or f"tok-{run_id}", now, LEASE, "new", (), scope=SlotScope(hint, "", env)
    )


def release(
    store: Store,
    run_id: str | None,
    *,
    queue: str = "q",
    ckey: str = "",
    now: int = NOW + 20,
    env: int | None = None,
) -> list[str]:
    return store.release_slot(run_id, SlotScope(queue, ckey, env), now, LEASE, DELAY)


def finish(store: Store, run_id: str, now: int = NOW + 20) -> None:
    assert store.finish_attempt(run_id, f"tok-{run_id}", "COMPLETED", now, fields={})


def held(store: Store) -> dict[str, int]:
    """Run id -> slot lease expiry of every slot held."""
    keys: Any = store.keys  # type: ignore[attr-defined]  # both implementations have them
    if isinstance(store, MemoryStore):
        return {m: int(s) for m, s in store.state.zsets.get(keys.slots(), {}).items()}
    rows = redis_client(store).zrange(keys.slots(), 0, -1, withscores=True)
    return {m: int(s) for m, s in rows}


@pytest.fixture
def limited(store: Store) -> Store:
    store.put_queue("q", {"concurrency_limit": "2"})
    return store


def test_claims_beyond_the_limit_wait_in_line_with_status_unchanged(limited: Store) -> None:
    # Given a limit-2 queue and three runs (QUEUE-1, §6.2)
    for i in range(3):
        create(limited, f"run_{i}", at=NOW + i)
    # When each is claimed
    claims = [claim(limited, f"run_{i}") for i in range(3)]
    # Then two hold a slot leased like the run, the third waits, still QUEUED
    assert [c.action for c in claims] == ["ok", "ok", "drop"]
    assert claims[2].reason == "queued"
    assert held(limited) == {"run_0": NOW + 10 + LEASE, "run_1": NOW + 10 + LEASE}
    assert (limited.get_run("run_2") or {})["status"] == "QUEUED"
    assert limited.queue_usage("q", NOW) == (2, 1)


def test_release_hands_the_slot_to_the_oldest_waiting_run(limited: Store) -> None:
    # Given a full limit-2 queue with two runs in line
    for i in range(4):
        create(limited, f"run_{i}", at=NOW + i)
        claim(limited, f"run_{i}")
    # When the first run completes and releases its slot
    finish(limited, "run_0")
    promoted = release(limited, "run_0")
    # Then the oldest in line holds the slot (a hand-over: its own claim takes it)
    assert promoted == ["run_2"]
    assert set(held(limited)) == {"run_1", "run_2"}
    assert limited.timer_due("promote|run_2") == NOW + 20 + DELAY
    assert claim(limited, "run_3", now=NOW + 30).reason == "queued"
    assert claim(limited, "run_2", now=NOW + 30).action == "ok"
    assert limited.timer_due("promote|run_2") is None
    assert "slot" not in (limited.get_run("run_0") or {})


def test_release_of_a_run_executing_again_changes_nothing(limited: Store) -> None:
    # Given an executing run holding a slot
    create(limited, "run_a")
    assert claim(limited, "run_a").action == "ok"
    # When a stale release arrives for it
    assert release(limited, "run_a") == []
    # Then it still holds its slot
    assert set(held(limited)) == {"run_a"}


def test_line_order_is_queued_time_minus_priority_not_claim_order(limited: Store) -> None:
    # Given a limit-1 queue, and runs created in line: A at t, B at t+8 s with priority 10 s
    # (TRIG-13), C at t+1 ms
    limited.put_queue("q", {"concurrency_limit": "1"})
    create(limited, "run_x", at=NOW - 100)
    assert claim(limited, "run_x").action == "ok"
    create(limited, "run_a", at=NOW)
    create(limited, "run_b", at=NOW + 8000, priority=10_000)
    create(limited, "run_c", at=NOW + 1)
    # When they are delivered in another order, then the slot frees
    for run_id in ("run_c", "run_a", "run_b"):
        assert claim(limited, run_id).reason == "queued"
    finish(limited, "run_x")
    # Then B (order t-2 s) goes first, then A, then C
    order = []
    current = "run_x"
    for _ in range(3):
        promoted = release(limited, current)
        order.extend(promoted)
        current = promoted[0]
        assert claim(limited, current, now=NOW + 30).action == "ok"
        finish(limited, current)
    assert order == ["run_b", "run_a", "run_c"]


def test_runs_created_in_line_start_in_order_whatever_the_delivery_order(limited: Store) -> None:
    # Given a limit-1 queue and three runs created (joined) in order
    limited.put_queue("q", {"concurrency_limit": "1"})
    for i in range(3):
        create(limited, f"run_{i}", at=NOW + i)
    assert limited.queue_usage("q", NOW) == (0, 3)
    # When the second run's delivery arrives first
    assert claim(limited, "run_1").reason == "queued"
    # Then the first run got the slot; its own message (still on its way) takes it up, and
    # "promote|run_0" publishes it again only if that message never comes within a lease
    assert set(held(limited)) == {"run_0"}
    assert limited.timer_due("promote|run_0") == NOW + 10 + LEASE
    assert claim(limited, "run_0").action == "ok"
    assert limited.timer_due("promote|run_0") is None
    # Then a release hands the next slot to run_1, already delivered: the caller publishes it
    finish(limited, "run_0")
    assert release(limited, "run_0") == ["run_1"]
    assert limited.timer_due("promote|run_1") == NOW + 20 + DELAY


def test_a_retry_is_ordered_by_its_retry_time_without_priority(limited: Store) -> None:
    # Given a full limit-1 queue and a run's second attempt queued with a big priority
    limited.put_queue("q", {"concurrency_limit": "1"})
    create(limited, "run_x")
    claim(limited, "run_x")
    create(limited, "run_retry", at=NOW + 5, priority=60_000, join=False, attempt="1")
    create(limited, "run_new", at=NOW + 4, join=False)
    # When both are delivered and the slot frees
    claim(limited, "run_retry")
    claim(limited, "run_new")
    finish(limited, "run_x")
    # Then the earlier queued time wins: priority counts for first attempts only (§6.2)
    assert release(limited, "run_x") == ["run_new"]


def test_resumed_run_keeps_its_original_place(limited: Store) -> None:
    # Given a limit-1 queue: a run parked in a wait, then a later run queued behind a blocker
    limited.put_queue("q", {"concurrency_limit": "1"})
    create(limited, "run_p", at=NOW)
    assert claim(limited, "run_p").action == "ok"
    assert (
        limited.park(
            "run_p", "tok-run_p", NOW + 15, 0, "{}", due_ms=NOW + 99_999, members=[], fields={}
        )
        == "parked"
    )
    assert release(limited, "run_p") == []
    create(limited, "run_x", at=NOW + 16)
    assert claim(limited, "run_x", now=NOW + 17).action == "ok"
    create(limited, "run_c", at=NOW + 18)
    assert claim(limited, "run_c", now=NOW + 19).reason == "queued"
    # When the parked run is woken and claimed while the queue is busy (QUEUE-7)
    assert claim(limited, "run_p", now=NOW + 21).reason == "waiting"  # not woken yet
    assert limited.wake("run_p") is not None
    assert claim(limited, "run_p", now=NOW + 22).reason == "queued"
    assert (limited.get_run("run_p") or {})["status"] == "WAITING"
    # Then it goes before the run triggered after it was first queued
    finish(limited, "run_x", now=NOW + 23)
    assert release(limited, "run_x", now=NOW + 23) == ["run_p"]
    resumed = claim(limited, "run_p", now=NOW + 24)
    assert resumed.action == "ok" and (resumed.record or {})["resumed"] == "1"


def test_each_concurrency_key_is_its_own_sub_queue(limited: Store) -> None:
    # Given a limit-2 queue and keyed runs a, a, a, b (QUEUE-2, TRIG-18)
    for i, key in enumerate("aaab"):
        create(limited, f"run_{i}", ckey=key, at=NOW + i)
    # When each is claimed with the task's default queue as the hint
    actions = [claim(limited, f"run_{i}").action for i in range(4)]
    # Then two "a" runs and the "b" run hold slots; the third "a" waits in the "a" line
    assert actions == ["ok", "ok", "drop", "ok"]
    assert limited.queue_subqueues("q") == [limited.keys.subqueue("q", "a")]
    assert limited.queue_usage("q", NOW) == (3, 1)


def test_subqueue_waiting_counts_each_concurrency_keys_line(limited: Store) -> None:
    # Given a limit-2 queue and keyed runs a x4, b x3, c x1 all claimed (QUEUE-2)
    for i, key in enumerate("aaaabbbc"):
        create(limited, f"run_{i}", ckey=key, at=NOW + i)
        claim(limited, f"run_{i}")
    # Then the a and b lines hold the runs beyond each key's 2 slots; c waits for nothing
    sub = limited.keys.subqueue
    assert limited.subqueue_waiting("q") == {sub("q", "a"): 2, sub("q", "b"): 1}
    assert limited.subqueue_waiting("other") == {}


def test_unlimited_queue_costs_no_slot_work(store: Store) -> None:
    # Given a queue without a limit (the default)
    store.put_queue("q", {"concurrency_limit": ""})
    create(store, "run_a")
    # When its run is claimed
    claimed = claim(store, "run_a")
    # Then it runs without a slot, and its end has nothing to release
    assert claimed.action == "ok" and "slot" not in (claimed.record or {})
    assert held(store) == {}
    assert store.queue_usage("q", NOW) == (0, 0)


def test_paused_queue_admits_nothing_until_pumped_after_resume(limited: Store) -> None:
    # Given a paused queue (QUEUE-9)
    limited.put_queue("q", {"paused": "1"})
    create(limited, "run_a")
    # When its run is claimed
    assert claim(limited, "run_a").reason == "queued"
    assert held(limited) == {}
    # Then resuming and pumping the queue promotes it
    limited.put_queue("q", {"paused": ""})
    assert release(limited, None) == ["run_a"]
    assert claim(limited, "run_a", now=NOW + 30).action == "ok"


def test_environment_limit_serves_the_oldest_head_across_queues(store: Store) -> None:
    # Given an environment limit of 1, two unlimited queues, and a run executing in "q"
    create(store, "run_x", queue="q", env=1)
    assert claim(store, "run_x", hint="q", env=1).action == "ok"
    # When a newer run of "q" and an older run of "r" wait (QUEUE-4)
    create(store, "run_new", queue="q", at=NOW + 5, env=1)
    create(store, "run_old", queue="r", at=NOW + 1, env=1)
    assert claim(store, "run_new", hint="q", env=1).reason == "queued"
    assert claim(store, "run_old", hint="r", env=1).reason == "queued"
    # Then the freed slot goes to the oldest head, in the other queue
    finish(store, "run_x")
    assert release(store, "run_x", env=1) == ["run_old"]
    assert store.queue_usage("r", NOW) == (1, 0)
    assert store.queue_usage("q", NOW) == (0, 1)


def test_queue_limit_is_clamped_to_the_environment_limit(limited: Store) -> None:
    # Given a limit-2 queue under an environment limit of 1 (QUEUE-8)
    for i in range(2):
        create(limited, f"run_{i}", at=NOW + i, env=1)
    # When both are claimed, then only one runs
    assert [claim(limited, f"run_{i}", env=1).action for i in range(2)] == ["ok", "drop"]


def test_lapsed_slots_are_reaped_and_their_sub_queue_pumped(limited: Store) -> None:
    # Given a slot whose holder stopped heartbeating (its worker died)
    limited.put_queue("q", {"concurrency_limit": "1"})
    create(limited, "run_dead")
    assert claim(limited, "run_dead").action == "ok"
    create(limited, "run_next", at=NOW + 1)
    assert claim(limited, "run_next").reason == "queued"
    assert limited.timer_due("reap|slots") == NOW + 10 + LEASE + 1000
    # When the reaper runs after the lease lapsed
    later = NOW + 10 + LEASE + 1
    assert limited.reap_slots(later) == 1
    # Then the slot is gone, a heartbeat of the old attempt fails, the run is due to be
    # published again (its message may have died with the worker), and the line is pumped
    assert held(limited) == {}
    assert limited.renew_leases([("run_dead", "tok-run_dead")], later, LEASE) == ["run_dead"]
    assert limited.timer_due("promote|run_dead") == later
    assert limited.timer_due(f"pump|{limited.keys.subqueue('q')}") == later
    assert release(limited, None, now=later) == ["run_next"]


def test_heartbeat_extends_the_slot_lease(limited: Store) -> None:
    # Given a run holding a slot
    create(limited, "run_a")
    claim(limited, "run_a")
    # When its lease is renewed
    assert limited.renew_leases([("run_a", "tok-run_a")], NOW + 1000, LEASE) == []
    # Then the slot lease moved with it
    assert held(limited) == {"run_a": NOW + 1000 + LEASE}


def test_takeover_after_a_lapsed_lease_takes_the_slot_again(limited: Store) -> None:
    # Given a limit-1 queue whose run's worker died (lease and slot lapsed)
    limited.put_queue("q", {"concurrency_limit": "1"})
    create(limited, "run_a")
    assert claim(limited, "run_a").action == "ok"
    # When it is claimed again after the lease (the lease timer republished it)
    again = claim(limited, "run_a", now=NOW + 10 + LEASE + 5, token="tok-2")
    # Then it is taken over as a new attempt, in a slot of its own
    assert again.action == "ok" and (again.record or {})["takeover"] == "1"
    assert set(held(limited)) == {"run_a"}


def test_cancelled_waiting_run_leaves_the_line(limited: Store) -> None:
    # Given a run waiting for a slot
    limited.put_queue("q", {"concurrency_limit": "0"})
    create(limited, "run_a")
    claim(limited, "run_a")
    # When it is cancelled and released
    assert limited.transition("run_a", NOW + 20, allowed="*", status="CANCELED").ok
    assert release(limited, "run_a") == []
    # Then nothing is left in line
    assert limited.queue_usage("q", NOW) == (0, 0)
    assert limited.queue_subqueues("q") == []


@pytest.mark.parametrize(
    "queue, ckey",
    [("q", ""), ("task/a:b", ""), ("q", "a:b|c"), ("user/1", "üñí cødé"), ("q", "123")],
)
def test_sub_queue_ids_are_unique_and_reversible(queue: str, ckey: str) -> None:
    # Given / When a (queue, key) pair is turned into a sub-queue id and back
    sub = Keys.subqueue(queue, ckey)
    # Then it has no separator characters and gives the same pair back
    assert "|" not in sub and sub.count(":") == (1 if ckey else 0)
    assert Keys.split_subqueue(sub) == (queue, ckey)


# put_queue / get_queue ------------------------------------------------------------------
def test_queues_round_trip(store: Store) -> None:
    store.put_queue("emails", {"concurrency_limit": "2"})
    assert store.get_queue("emails") == {"concurrency_limit": "2"}
    assert store.get_queue("other") is None
