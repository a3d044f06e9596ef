"""The Store contract for run records (``RunStore``): create, read, claim, renew, finish,
transition, list, batches. Every test runs against RedisStore (real Redis) and MemoryStore.

The ``store`` fixture (``conftest.py``) gives each test both stores in turn; each protocol
has its own ``test_contract_<concern>.py``, sharing the helpers of ``contract.py``.

A behaviour is part of the contract when the engine relies on it; both stores must agree
on it to the string (record values are what Redis returns). Arguments are domain values
(``finish_attempt(idempotency_key=IdempotencyKey(...))``, ``transition(pending_task=...)``),
never key names.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from celery_trigger._store.base import (
    Claim,
    Created,
    Store,
    Transition,
)
from celery_trigger.errors import StoreUnavailableError

from .contract import FINAL, LEASE, NOW, claim, create, idem, new_run


# create_runs --------------------------------------------------------------------------
def test_create_writes_the_record_and_every_index(store: Store) -> None:
    # Given a parent run
    create(store, "run_parent")
    # When a child with tags, a timer and an unknown version is created
    run = new_run(
        "run_a",
        tags=["a", "b"],
        timers=[("wake:run_a", NOW + 5000)],
        parent_id="run_parent",
        pending_version=True,
        fields={"payload": "{}"},
    )
    assert store.create_runs([run], NOW + 1) == [Created("run_a", False)]
    # Then the record (with its change counter "ev", events.lua), both listings, the children
    # list, the timer and the pending set hold it
    assert store.get_run("run_a") == {**run.fields, "ev": "1"}
    assert store.list_run_ids(index=None, before=None, count=10) == [
        ("run_a", NOW + 1),
        ("run_parent", NOW),
    ]
    assert store.list_run_ids(index="a", before=None, count=10) == [("run_a", NOW + 1)]
    assert store.list_run_ids(index="b", before=None, count=10) == [("run_a", NOW + 1)]
    assert store.children("run_parent") == ["run_a"]
    assert store.timer_due("wake:run_a") == NOW + 5000
    assert store.pending_runs("t.send", 10) == ["run_a"]


def test_listings_order_by_the_records_creation_time(store: Store) -> None:
    """RUNS-4: the listings use the record's "created" (not the time of the write), so a
    listing and the records it returns agree on which run is newer."""
    # Given a run created at NOW + 5 whose write happens at NOW + 9, and one written at NOW + 7
    store.create_runs([new_run("run_b", fields={"created": str(NOW + 5)}, tags=["t"])], NOW + 9)
    store.create_runs([new_run("run_c", fields={"created": str(NOW + 7)}, tags=["t"])], NOW + 7)
    # Then both listings order them by "created"
    assert store.list_run_ids(index=None, before=None, count=10) == [
        ("run_c", NOW + 7),
        ("run_b", NOW + 5),
    ]
    assert store.list_run_ids(index="t", before=None, count=10) == [
        ("run_c", NOW + 7),
        ("run_b", NOW + 5),
    ]


def test_create_many_answers_in_order_and_lists_children_in_trigger_order(store: Store) -> None:
    # Given / When three children created in one call (RUNS-10)
    runs = [new_run(f"run_{i}", parent_id="run_p") for i in range(3)]
    created = store.create_runs(runs, NOW)
    # Then each is new and the parent's children keep trigger order
    assert [(c.run_id, c.cached) for c in created] == [(f"run_{i}", False) for i in range(3)]
    assert store.children("run_p") == ["run_0", "run_1", "run_2"]
    assert store.get_runs(["run_2", "nope", "run_0"]) == [
        {**runs[2].fields, "ev": "1"},
        None,
        {**runs[0].fields, "ev": "1"},
    ]


def test_second_create_with_the_same_key_returns_the_owner_and_writes_nothing(store: Store) -> None:
    # Given a run owning key "k" (IDEM-3, IDEM-7)
    create(store, "run_a", idempotency_key="k", idempotency_ttl_ms=60_000)
    # When another run with the same key, tags, timers and a parent is created
    result = create(
        store,
        "run_b",
        idempotency_key="k",
        idempotency_ttl_ms=60_000,
        tags=["x"],
        timers=[("wake:run_b", NOW)],
        parent_id="run_p",
        pending_version=True,
    )
    # Then the owner comes back cached and none of run_b's writes happened
    assert result == ("run_a", True)
    assert store.get_run("run_b") is None
    assert store.timer_due("wake:run_b") is None
    assert store.list_run_ids(index="x", before=None, count=10) == []
    assert store.children("run_p") == []
    assert store.pending_runs("t.send", 10) == []
    assert store.list_run_ids(index=None, before=None, count=10) == [("run_a", NOW)]


def test_same_key_deduplicates_within_one_call_but_not_across_tasks(store: Store) -> None:
    # Given / When one call creates two runs of t.send and one of t.other with key "k" (IDEM-4)
    opts: dict[str, Any] = {"idempotency_key": "k", "idempotency_ttl_ms": 60_000}
    created = store.create_runs(
        [
            new_run("run_a", **opts),
            new_run("run_b", **opts),
            new_run("run_c", task_id="t.other", **opts),
        ],
        NOW,
    )
    # Then the second is a hit on the first and the other task gets its own run
    assert [(c.run_id, c.cached) for c in created] == [
        ("run_a", False),
        ("run_a", True),
        ("run_c", False),
    ]


def test_replace_owner_lets_the_new_run_take_the_key(store: Store) -> None:
    # Given run_a owns "k" (it failed: IDEM-6)
    create(store, "run_a", idempotency_key="k", idempotency_ttl_ms=60_000)
    # When run_b is created allowed to replace run_a
    taken = create(
        store, "run_b", idempotency_key="k", idempotency_ttl_ms=60_000, replace_owner="run_a"
    )
    # Then run_b is new and now owns the key; a replace naming someone else is a hit
    assert taken == ("run_b", False)
    assert create(store, "run_c", idempotency_key="k", idempotency_ttl_ms=60_000) == ("run_b", True)
    assert create(
        store, "run_d", idempotency_key="k", idempotency_ttl_ms=60_000, replace_owner="run_a"
    ) == ("run_b", True)


def test_recreating_an_existing_run_id_is_cached_and_keeps_the_record(store: Store) -> None:
    # Given run_a exists
    create(store, "run_a")
    # When it is created again (a retried trigger) with other fields
    result = create(store, "run_a", fields={"payload": "other"}, tags=["t"])
    # Then nothing changes
    assert result == ("run_a", True)
    assert "payload" not in (store.get_run("run_a") or {})
    assert store.list_run_ids(index="t", before=None, count=10) == []


def test_create_rejects_a_key_without_ttl(store: Store) -> None:
    # Given / When a key with ttl 0 (Redis' SET PX refuses it) / Then both stores refuse
    with pytest.raises(StoreUnavailableError):
        create(store, "run_a", idempotency_key="k", idempotency_ttl_ms=0)
    assert store.get_run("run_a") is None


def test_get_run_returns_a_copy(store: Store) -> None:
    # Given run_a / When the caller mutates what it got / Then the store is unchanged
    create(store, "run_a")
    record = store.get_run("run_a")
    assert record is not None
    record["status"] = "COMPLETED"
    assert (store.get_run("run_a") or {})["status"] == "QUEUED"
    assert store.get_run("missing") is None


# claim_attempt ------------------------------------------------------------------------
def test_claim_of_a_missing_run_says_missing(store: Store) -> None:
    assert claim(store, "nope") == Claim("missing")


@pytest.mark.parametrize("status", ["QUEUED", "DEQUEUED"])
def test_claim_takes_a_runnable_run_under_a_lease(store: Store, status: str) -> None:
    # Given a run ready to execute with two timers (STATUS-1)
    create(store, "run_a", status=status, timers=[("ttl:run_a", NOW + 1), ("keep", NOW + 2)])
    # When a delivered message claims it, dropping one timer
    result = claim(store, "run_a", drop=("ttl:run_a",))
    # Then the record says EXECUTING under our lease, attempt 1, started now
    assert result.action == "ok" and result.record is not None
    assert {
        k: result.record[k]
        for k in (
            "status",
            "lease",
            "lease_exp",
            "attempt",
            "started",
            "attempt_started",
            "updated",
        )
    } == {
        "status": "EXECUTING",
        "lease": "tok-1",
        "lease_exp": str(NOW + LEASE),
        "attempt": "1",
        "started": str(NOW),
        "attempt_started": str(NOW),
        "updated": str(NOW),
    }
    assert store.get_run("run_a") == result.record
    assert store.timer_due("ttl:run_a") is None
    assert store.timer_due("keep") == NOW + 2


def test_claim_counts_attempts_and_keeps_the_first_start(store: Store) -> None:
    # Given attempt 1 went back to QUEUED for a retry (STATUS-4)
    create(store, "run_a")
    claim(store, "run_a")
    assert store.finish_attempt("run_a", "tok-1", "QUEUED", NOW + 10, fields={})
    # When attempt 2 is claimed later
    result = claim(store, "run_a", token="tok-2", now=NOW + 1000)
    # Then attempt is 2, started is unchanged, attempt_started is now
    assert result.record is not None
    assert (
        result.record["attempt"],
        result.record["started"],
        result.record["attempt_started"],
    ) == ("2", str(NOW), str(NOW + 1000))


@pytest.mark.parametrize("status", FINAL)
def test_claim_drops_a_run_in_a_final_status(store: Store, status: str) -> None:
    # Given a finished run (STATUS-6) / When a duplicate message arrives
    create(store, "run_a", status=status, timers=[("t1", NOW)])
    before = store.get_run("run_a")
    result = claim(store, "run_a", drop=("t1",))
    # Then it is dropped with the status and nothing changes
    assert result == Claim("drop", reason=status)
    assert store.get_run("run_a") == before
    assert store.timer_due("t1") == NOW


@pytest.mark.parametrize(
    ("status", "reason"),
    [("DELAYED", "DELAYED"), ("PENDING_VERSION", "PENDING_VERSION"), ("WAITING", "waiting")],
)  # a WAITING run needs woken = 1 (test_contract_durable.py)
def test_claim_drops_a_run_that_is_not_runnable(store: Store, status: str, reason: str) -> None:
    create(store, "run_a", status=status)
    assert claim(store, "run_a") == Claim("drop", reason=reason)
    assert (store.get_run("run_a") or {})["status"] == status


def test_claim_drops_a_duplicate_while_the_lease_is_live(store: Store) -> None:
    # Given attempt 1 is executing under tok-1
    create(store, "run_a")
    held = claim(store, "run_a").record
    # When a redelivered message claims just before the lease expires
    result = claim(store, "run_a", token="tok-2", now=NOW + LEASE - 1)
    # Then it is dropped and the lease is untouched
    assert result == Claim("drop", reason="executing")
    assert store.get_run("run_a") == held


def test_claim_takes_over_when_the_lease_expired(store: Store) -> None:
    # Given attempt 1's worker died under tok-1
    create(store, "run_a")
    claim(store, "run_a")
    # When a redelivery claims at the lease expiry
    result = claim(store, "run_a", token="tok-2", now=NOW + LEASE)
    # Then it gets attempt 2 and the dead holder can no longer finish
    assert result.record is not None
    assert (result.record["lease"], result.record["attempt"]) == ("tok-2", "2")
    assert result.record["started"] == str(NOW)
    assert not store.finish_attempt("run_a", "tok-1", "COMPLETED", NOW + LEASE, fields={})


def test_warm_claim_needs_the_same_live_token(store: Store) -> None:
    # Given run_a executing under tok-1 and run_b still queued
    create(store, "run_a")
    create(store, "run_b")
    claim(store, "run_a")
    # When in-worker retries claim warm
    wrong = claim(store, "run_a", token="tok-x", now=NOW + 5, mode="warm")
    queued = claim(store, "run_b", now=NOW + 5, mode="warm")
    same = claim(store, "run_a", now=NOW + 5, mode="warm")
    # Then only the holder of the lease gets the next attempt
    assert wrong == Claim("drop", reason="lease lost")
    assert queued == Claim("drop", reason="lease lost")
    assert same.record is not None
    assert (same.record["attempt"], same.record["lease_exp"], same.record["takeover"]) == (
        "2",
        str(NOW + 5 + LEASE),
        "0",
    )  # its own live lease: no takeover


def test_claim_drops_a_queued_run_whose_ttl_passed(store: Store) -> None:
    # Given two runs queued at NOW with a 10 s ttl (STATUS-2)
    create(store, "run_a", fields={"ttl": "10"})
    create(store, "run_b", fields={"ttl": "10"})
    # When one is claimed at the ttl and one just before
    late = claim(store, "run_a", now=NOW + 10_000)
    early = claim(store, "run_b", now=NOW + 9_999)
    # Then the late one is dropped with "ttl", not started
    assert late == Claim("drop", reason="ttl")
    assert "started" not in (store.get_run("run_a") or {})
    assert early.action == "ok"


def test_ttl_no_longer_applies_once_the_run_started(store: Store) -> None:
    # Given a run with a ttl that ran attempt 1 and was re-queued for a retry
    create(store, "run_a", fields={"ttl": "1"})
    claim(store, "run_a")
    store.finish_attempt("run_a", "tok-1", "QUEUED", NOW, fields={})
    # When attempt 2 is claimed long after the ttl / Then it runs
    assert claim(store, "run_a", token="tok-2", now=NOW + 60_000).action == "ok"


def test_only_one_of_many_concurrent_claims_wins(store: Store) -> None:
    # Given one queued run and 8 workers receiving duplicates at the same instant
    create(store, "run_a")
    barrier = threading.Barrier(8)
    results: list[Claim] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        barrier.wait()
        outcome = claim(store, "run_a", token=f"tok-{i}")
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    # Then exactly one claim is ok and the rest see it executing
    assert sorted(r.action for r in results) == ["drop"] * 7 + ["ok"]
    assert {r.reason for r in results if r.action == "drop"} == {"executing"}
    assert (store.get_run("run_a") or {})["attempt"] == "1"


def test_concurrent_creates_with_one_key_make_one_run(store: Store) -> None:
    # Given 8 threads triggering with the same key at once (IDEM-3)
    barrier = threading.Barrier(8)
    results: list[tuple[str, bool]] = []
    lock = threading.Lock()

    def trigger(i: int) -> None:
        barrier.wait()
        outcome = create(store, f"run_{i}", idempotency_key="k", idempotency_ttl_ms=60_000)
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=trigger, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    # Then one run was created and every caller got its id
    assert len({run_id for run_id, _ in results}) == 1
    assert sorted(cached for _, cached in results) == [False] + [True] * 7
    assert len(store.list_run_ids(index=None, before=None, count=20)) == 1


# renew_leases -------------------------------------------------------------------------
def test_renew_extends_only_leases_still_held(store: Store) -> None:
    # Given run_a held by tok-1, run_b by tok-1 but finished, run_c claimed by someone else
    for run_id in ("run_a", "run_b", "run_c"):
        create(store, run_id)
        claim(store, run_id, token="tok-other" if run_id == "run_c" else "tok-1")
    store.finish_attempt("run_b", "tok-1", "COMPLETED", NOW, fields={})
    # When the heartbeat renews all three plus a missing run
    lost = store.renew_leases(
        [("run_a", "tok-1"), ("run_b", "tok-1"), ("run_c", "tok-1"), ("gone", "tok-1")],
        NOW + 1000,
        LEASE,
    )
    # Then only run_a is extended; the others are reported lost and left alone
    assert lost == ["run_b", "run_c", "gone"]
    assert (store.get_run("run_a") or {})["lease_exp"] == str(NOW + 1000 + LEASE)
    assert (store.get_run("run_b") or {})["lease_exp"] == "0"
    assert (store.get_run("run_c") or {})["lease_exp"] == str(NOW + LEASE)
    assert store.renew_leases([], NOW, LEASE) == []


# finish_attempt -----------------------------------------------------------------------
def test_finish_with_the_lease_writes_the_outcome(store: Store) -> None:
    # Given attempt 1 executing (STATUS-1)
    create(store, "run_a")
    claim(store, "run_a")
    # When it completes with output and a follow-up timer
    ok = store.finish_attempt(
        "run_a",
        "tok-1",
        "COMPLETED",
        NOW + 500,
        fields={"output": '{"x": 1}'},
        timers=[("notify", NOW + 600)],
    )
    # Then the outcome, the finish time and the timer are written and the lease is gone
    record = store.get_run("run_a") or {}
    assert ok == 1  # written, and no run is parked on it (2 would say "notify waiters")
    assert {
        k: record[k]
        for k in ("status", "lease", "lease_exp", "updated", "finished", "output", "queued_at")
    } == {
        "status": "COMPLETED",
        "lease": "",
        "lease_exp": "0",
        "updated": str(NOW + 500),
        "finished": str(NOW + 500),
        "output": '{"x": 1}',
        "queued_at": str(NOW),
    }
    assert store.timer_due("notify") == NOW + 600


def test_finish_without_the_lease_writes_nothing(store: Store) -> None:
    # Given run_a executing under tok-1, run_b cancelled while executing, run_c never claimed
    for run_id in ("run_a", "run_b", "run_c"):
        create(store, run_id)
    claim(store, "run_a")
    claim(store, "run_b")
    store.transition("run_b", NOW + 1, allowed="*", status="CANCELED")
    before = store.get_runs(["run_a", "run_b", "run_c"])
    # When finishing with a wrong token, after the cancel, and without a claim
    outcomes = [
        store.finish_attempt(
            run_id, token, "COMPLETED", NOW + 2, fields={"o": "1"}, timers=[("t", NOW)]
        )
        for run_id, token in (
            ("run_a", "tok-x"),
            ("run_b", "tok-1"),
            ("run_c", "tok-1"),
            ("gone", "tok-1"),
        )
    ]
    # Then every call is refused and nothing changed
    assert outcomes == [False, False, False, False]
    assert store.get_runs(["run_a", "run_b", "run_c"]) == before
    assert store.timer_due("t") is None


def test_finish_to_queued_stamps_queued_at_not_finished(store: Store) -> None:
    # Given attempt 1 failed and will retry later (STATUS-4)
    create(store, "run_a")
    claim(store, "run_a")
    # When it is re-queued with a retry timer
    store.finish_attempt(
        "run_a", "tok-1", "QUEUED", NOW + 70, fields={}, timers=[("retry:run_a", NOW + 60_000)]
    )
    # Then queued_at moves, finished is absent, the timer is due later
    record = store.get_run("run_a") or {}
    assert (record["status"], record["queued_at"]) == ("QUEUED", str(NOW + 70))
    assert "finished" not in record
    assert store.timer_due("retry:run_a") == NOW + 60_000


def test_finish_releases_the_key_of_a_failed_owner(store: Store) -> None:
    # Given run_a owns "k" and fails (IDEM-6)
    create(store, "run_a", idempotency_key="k", idempotency_ttl_ms=60_000)
    claim(store, "run_a")
    # When it finishes with release_key
    store.finish_attempt(
        "run_a",
        "tok-1",
        "FAILED",
        NOW,
        fields={},
        idempotency_key=idem("k"),
        release_key=True,
    )
    # Then the next trigger with "k" creates a new run
    assert create(store, "run_b", idempotency_key="k", idempotency_ttl_ms=60_000) == (
        "run_b",
        False,
    )


def test_finish_keeps_the_key_unless_released_and_owned(store: Store) -> None:
    # Given run_a owns "k" and run_b owns "j" which was taken over by run_c
    create(store, "run_a", idempotency_key="k", idempotency_ttl_ms=60_000)
    create(store, "run_b", idempotency_key="j", idempotency_ttl_ms=60_000)
    create(store, "run_c", idempotency_key="j", idempotency_ttl_ms=60_000, replace_owner="run_b")
    claim(store, "run_a")
    claim(store, "run_b")
    # When run_a completes without release and run_b fails with release
    store.finish_attempt("run_a", "tok-1", "COMPLETED", NOW, fields={}, idempotency_key=idem("k"))
    store.finish_attempt(
        "run_b",
        "tok-1",
        "FAILED",
        NOW,
        fields={},
        idempotency_key=idem("j"),
        release_key=True,
    )
    # Then both keys still name their owners (IDEM-6: COMPLETED keeps the key)
    assert create(store, "run_x", idempotency_key="k", idempotency_ttl_ms=60_000) == ("run_a", True)
    assert create(store, "run_y", idempotency_key="j", idempotency_ttl_ms=60_000) == ("run_c", True)


# transition ---------------------------------------------------------------------------
def test_transition_from_an_allowed_status_applies_every_change(store: Store) -> None:
    # Given a delayed run with its delay timer
    create(store, "run_a", status="DELAYED", timers=[("delay:run_a", NOW + 9000)])
    # When the delay fires: DELAYED -> QUEUED, timer swapped, a field written
    result = store.transition(
        "run_a",
        NOW + 9000,
        allowed="WAITING,DELAYED",
        status="QUEUED",
        remove_timers=["delay:run_a"],
        add_timers=[("ttl:run_a", NOW + 1)],
        fields={"delayed_until": ""},
    )
    # Then the returned record is the stored one, with the new status and stamps
    assert result.ok and result.status == "QUEUED"
    assert result.record == store.get_run("run_a")
    assert result.record is not None
    assert (
        result.record["updated"],
        result.record["queued_at"],
        result.record["delayed_until"],
    ) == (str(NOW + 9000), str(NOW + 9000), "")
    assert "finished" not in result.record
    assert store.timer_due("delay:run_a") is None
    assert store.timer_due("ttl:run_a") == NOW + 1


def test_transition_from_a_status_not_allowed_changes_nothing(store: Store) -> None:
    # Given a queued run with a timer
    create(store, "run_a", timers=[("t", NOW)])
    before = store.get_run("run_a")
    # When asked to move it only from DELAYED
    result = store.transition(
        "run_a",
        NOW,
        allowed="DELAYED",
        status="CANCELED",
        remove_timers=["t"],
        add_timers=[("u", NOW)],
        fields={"x": "1"},
    )
    # Then it is refused with the current status
    assert (result.ok, result.status, result.record) == (False, "QUEUED", None)
    assert store.get_run("run_a") == before
    assert (store.timer_due("t"), store.timer_due("u")) == (NOW, None)


@pytest.mark.parametrize("status", FINAL)
def test_star_allows_any_status_except_a_final_one(store: Store, status: str) -> None:
    # Given a finished run and a waiting run (STATUS-6)
    create(store, "run_done", status=status)
    create(store, "run_wait", status="WAITING")
    # When both are cancelled with "*"
    done = store.transition("run_done", NOW, allowed="*", status="CANCELED")
    waiting = store.transition("run_wait", NOW, allowed="*", status="CANCELED")
    # Then only the non-final one moves
    assert (done.ok, done.status) == (False, status)
    assert (waiting.ok, waiting.status) == (True, "CANCELED")


def test_transition_to_a_final_status_ends_the_lease(store: Store) -> None:
    # Given an executing run / When it is cancelled
    create(store, "run_a")
    claim(store, "run_a")
    result = store.transition("run_a", NOW + 3, allowed="*", status="CANCELED")
    # Then finished is stamped and the lease is cleared, so the holder cannot finish
    assert result.record is not None
    assert (result.record["finished"], result.record["lease"], result.record["lease_exp"]) == (
        str(NOW + 3),
        "",
        "0",
    )
    assert store.renew_leases([("run_a", "tok-1")], NOW + 4, LEASE) == ["run_a"]


def test_transition_without_status_only_reads(store: Store) -> None:
    # Given a queued run / When transition is called with status ""
    create(store, "run_a")
    result = store.transition("run_a", NOW + 50, allowed="*")
    # Then the record comes back unchanged
    assert (result.ok, result.status) == (True, "QUEUED")
    assert result.record == store.get_run("run_a")
    assert result.record is not None and "updated" not in result.record


def test_transition_of_a_missing_run_is_refused(store: Store) -> None:
    assert store.transition("gone", NOW, allowed="*", status="CANCELED") == Transition(False, "")
    assert store.get_run("gone") is None


def test_transition_removes_the_run_from_the_named_set(store: Store) -> None:
    # Given two runs waiting for a worker that knows their task
    create(store, "run_a", status="PENDING_VERSION", pending_version=True)
    create(store, "run_b", status="PENDING_VERSION", pending_version=True, now=NOW + 1)
    # When run_a is released to the queue
    store.transition(
        "run_a", NOW + 2, allowed="PENDING_VERSION", status="QUEUED", pending_task="t.send"
    )
    # Then only run_b is still pending
    assert store.pending_runs("t.send", 10) == ["run_b"]


# list_run_ids -------------------------------------------------------------------------
def test_list_is_newest_first_and_limited(store: Store) -> None:
    # Given runs created at three instants, two in the same ms
    create(store, "run_a", now=NOW)
    create(store, "run_b", now=NOW + 5)
    create(store, "run_c", now=NOW + 5)
    create(store, "run_d", now=NOW + 9)
    # When listing two, then the next page from the cursor
    first = store.list_run_ids(index=None, before=None, count=2)
    rest = store.list_run_ids(index=None, before=(first[-1][1], first[-1][0]), count=10)
    # Then ties sort by member descending and nothing is repeated or skipped
    assert first == [("run_d", NOW + 9), ("run_c", NOW + 5)]
    assert rest == [("run_b", NOW + 5), ("run_a", NOW)]
    assert store.list_run_ids(index=None, before=None, count=0) == []


def test_paging_through_a_large_batch_created_in_one_ms_yields_every_run_once(store: Store) -> None:
    # Given 130 runs tagged "b" created in one call (one ms) plus older ones (RUNS-4, TAG-4)
    store.create_runs([new_run(f"run_{i:03d}", tags=["b"]) for i in range(130)], NOW)
    store.create_runs([new_run(f"old_{i}", tags=["b"]) for i in range(3)], NOW - 1)
    create(store, "untagged")
    # When paging 10 at a time
    seen: list[str] = []
    cursor: tuple[int, str] | None = None
    while True:
        page = store.list_run_ids(index="b", before=cursor, count=10)
        if not page:
            break
        seen.extend(run_id for run_id, _ in page)
        cursor = (page[-1][1], page[-1][0])
    # Then every tagged run appears exactly once, newest first
    assert seen == [f"run_{i:03d}" for i in reversed(range(130))] + ["old_2", "old_1", "old_0"]


# batches, queues, task definitions, pending runs --------------------------------------
def test_batches_round_trip_and_merge(store: Store) -> None:
    store.put_batch("batch_1", {"runs": '["run_a"]', "count": "1"})
    store.put_batch("batch_1", {"count": "2"})
    assert store.get_batch("batch_1") == {"runs": '["run_a"]', "count": "2"}
    assert store.get_batch("batch_2") is None
    with pytest.raises(StoreUnavailableError):
        store.put_batch("batch_3", {})
