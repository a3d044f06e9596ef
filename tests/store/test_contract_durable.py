"""The Store contract for durable execution: journal, park/notify/wake, resume claims, tokens.

Every test runs against RedisStore (real Redis) and MemoryStore (the ``store`` fixture). The
flow under test (DESIGN §4, D-17): an attempt appends one journal entry per durable
operation; at a real wait it parks (WAITING, lease released, ``<run>|<k>`` registered in each
awaited member's waiters set); the resolving write schedules ``notify|<member>``; ``notify``
wakes the run when its last member resolved, ``wake`` when its timer is due; the resume
claim continues the same attempt with the journal, a new attempt starts with none.
Every claim arms the dead-worker check ``lease|<id>``; ending or parking the attempt disarms it.
"""

from __future__ import annotations

import pytest

from celery_trigger._store.base import Claim, Created, Store
from celery_trigger.errors import StoreUnavailableError
from tests.helpers import wait_for

from .contract import FINAL, LEASE, NOW, claim, create

SAFETY = 5000  # the notify fallback delay the scripts use (``waiters.SAFETY_MS``)


def executing(store: Store, run_id: str = "run_p", token: str = "tok-1") -> None:
    create(store, run_id)
    assert claim(store, run_id, token=token).action == "ok"


def park(
    store: Store,
    run_id: str = "run_p",
    *,
    k: int = 0,
    entry: str = "e0",
    members: tuple[str, ...] = (),
    due: int | None = None,
    now: int = NOW + 5,
    token: str = "tok-1",
    fields: dict[str, str] | None = None,
) -> str:
    return store.park(
        run_id, token, now, k, entry, due_ms=due, members=list(members), fields=fields or {}
    )


def token(
    store: Store,
    token_id: str,
    *,
    now: int = NOW,
    key: str | None = None,
    key_ttl_ms: int = 0,
    timeout_ms: int | None = None,
    tags: tuple[str, ...] = (),
) -> Created:
    fields = {"id": token_id, "status": "WAITING", "created": str(now)}
    return store.create_token(
        token_id,
        now,
        key=key,
        key_ttl_ms=key_ttl_ms,
        timeout_ms=timeout_ms,
        fields=fields,
        tags=list(tags),
    )


def status(store: Store, run_id: str) -> str:
    return (store.get_run(run_id) or {}).get("status", "")


# journal_append -----------------------------------------------------------------------
def test_journal_append_adds_entry_k_only_when_the_journal_has_k_entries(store: Store) -> None:
    # Given an executing attempt (D-17)
    executing(store)
    # When entries are appended in order, replayed, and one skips a position
    lengths = [
        store.journal_append("run_p", "tok-1", 0, "a"),
        store.journal_append("run_p", "tok-1", 0, "a-replayed"),
        store.journal_append("run_p", "tok-1", 2, "gap"),
        store.journal_append("run_p", "tok-1", 1, "b"),
    ]
    # Then only the first write of each position lands and the length comes back
    assert lengths == [1, 1, 1, 2]
    assert store.journal("run_p") == ["a", "b"]


def test_journal_append_without_the_lease_writes_nothing(store: Store) -> None:
    # Given run_p executing under tok-1 and run_q only queued
    executing(store)
    create(store, "run_q")
    # When appending with another token, to a queued run and to a missing run
    outcomes = [
        store.journal_append("run_p", "tok-x", 0, "a"),
        store.journal_append("run_q", "tok-1", 0, "a"),
        store.journal_append("gone", "tok-1", 0, "a"),
    ]
    # Then each is refused with -1 and every journal stays empty
    assert outcomes == [-1, -1, -1]
    assert (store.journal("run_p"), store.journal("run_q"), store.journal("gone")) == ([], [], [])


# park ---------------------------------------------------------------------------------
def test_park_without_the_lease_is_lost_and_writes_nothing(store: Store) -> None:
    # Given run_p executing under tok-1 and an unfinished child
    executing(store)
    create(store, "run_c")
    before = store.get_run("run_p")
    # When another token parks it on the child / Then it is lost and nothing is registered
    assert park(store, members=("run_c",), due=NOW + 60_000, token="tok-x") == "lost"
    assert store.get_run("run_p") == before
    assert (store.journal("run_p"), store.waiters("run_c")) == ([], [])
    assert store.timer_due("resume|run_p") is None


@pytest.mark.parametrize("child_status", FINAL)
def test_park_on_a_finished_child_is_ready_and_keeps_the_lease(
    store: Store, child_status: str
) -> None:
    # Given a child that already reached a final status (IDEM-10, TRIG-7)
    executing(store)
    create(store, "run_c", status=child_status)
    before = store.get_run("run_p")
    # When the parent parks on it
    result = park(store, members=("run_c",), fields={"attempt_ms": "7"})
    # Then it continues at once: entry journaled, still EXECUTING, nobody registered
    assert result == "ready"
    assert store.journal("run_p") == ["e0"]
    assert store.get_run("run_p") == before
    assert store.waiters("run_c") == []


@pytest.mark.parametrize("child_status", ["QUEUED", "DELAYED", "EXECUTING", "WAITING"])
def test_park_on_an_unfinished_child_parks_and_registers_the_waiter(
    store: Store, child_status: str
) -> None:
    # Given a parent at its third durable operation and an unfinished child (STATUS-3)
    executing(store)
    store.journal_append("run_p", "tok-1", 0, "e0")
    store.journal_append("run_p", "tok-1", 1, "e1")
    create(store, "run_c", status=child_status)
    # When it parks on the child with its usage totals
    result = park(
        store,
        k=2,
        entry="e2",
        members=("run_c",),
        fields={"duration_ms": "120", "attempt_ms": "120"},
    )
    # Then it is WAITING without a lease, the entry is journaled, the child knows its waiter
    record = store.get_run("run_p") or {}
    assert result == "parked"
    assert {
        f: record[f]
        for f in (
            "status",
            "lease",
            "lease_exp",
            "woken",
            "wait_k",
            "updated",
            "duration_ms",
            "attempt_ms",
            "attempt",
        )
    } == {
        "status": "WAITING",
        "lease": "",
        "lease_exp": "0",
        "woken": "0",
        "wait_k": "2",
        "updated": str(NOW + 5),
        "duration_ms": "120",
        "attempt_ms": "120",
        "attempt": "1",
    }
    assert store.journal("run_p") == ["e0", "e1", "e2"]
    assert store.waiters("run_c") == ["run_p|2"]
    assert store.timer_due("resume|run_p") is None
    assert store.renew_leases([("run_p", "tok-1")], NOW + 6, LEASE) == ["run_p"]


def test_park_on_a_batch_awaits_only_the_unfinished_children(store: Store) -> None:
    # Given a batch of three children, one already completed (TRIG-7)
    executing(store)
    create(store, "run_done", status="COMPLETED")
    create(store, "run_1")
    create(store, "run_2")
    # When the parent parks on all three
    assert park(store, members=("run_done", "run_1", "run_2")) == "parked"
    # Then only the unfinished ones know the waiter, and only they count for waking
    assert (store.waiters("run_done"), store.waiters("run_1"), store.waiters("run_2")) == (
        [],
        ["run_p|0"],
        ["run_p|0"],
    )
    assert store.notify("run_p|0", "run_done", NOW + 10, SAFETY) is False
    assert store.notify("run_p|0", "run_1", NOW + 10, SAFETY) is False
    assert store.notify("run_p|0", "run_2", NOW + 10, SAFETY) is True


@pytest.mark.parametrize(
    ("token_status", "expected"),
    [("WAITING", "parked"), ("COMPLETED", "ready"), ("TIMED_OUT", "ready")],
)
def test_park_on_a_token_waits_only_while_it_is_waiting(
    store: Store, token_status: str, expected: str
) -> None:
    # Given a token in some status (WAIT-9: completed before the wait resumes at once)
    executing(store)
    token(store, "tk")
    if token_status != "WAITING":
        store.complete_token("tk", NOW + 1, token_status, "output", "{}")
    # When the run parks on it
    result = park(store, members=("token:tk",))
    # Then it parks (and registers as the token's waiter) only while the token is WAITING
    assert result == expected
    assert status(store, "run_p") == ("WAITING" if expected == "parked" else "EXECUTING")
    assert store.waiters("token:tk") == (["run_p|0"] if expected == "parked" else [])


def test_duration_wait_due_now_or_earlier_is_ready(store: Store) -> None:
    # Given an executing run (WAIT-5: a date in the past returns at once)
    executing(store)
    # When it parks on a wake-up time equal to now / Then it continues without a timer
    assert park(store, due=NOW + 5, now=NOW + 5) == "ready"
    assert status(store, "run_p") == "EXECUTING"
    assert store.journal("run_p") == ["e0"]
    assert store.timer_due("resume|run_p") is None


def test_duration_wait_in_the_future_parks_with_a_resume_timer(store: Store) -> None:
    # Given an executing run (WAIT-2)
    executing(store)
    # When it parks until 30 s from now
    result = park(store, due=NOW + 30_000, now=NOW + 5)
    # Then it is WAITING and its resume timer is due at the wake-up time
    assert result == "parked"
    assert status(store, "run_p") == "WAITING"
    assert store.timer_due("resume|run_p") == NOW + 30_000


# notify ---------------------------------------------------------------------------------
def test_notify_wakes_only_when_the_last_member_resolves_and_only_once(store: Store) -> None:
    # Given a parent parked at k=0 on two children (TRIG-7)
    executing(store)
    create(store, "run_a")
    create(store, "run_b")
    park(store, members=("run_a", "run_b"))
    # When the first child resolves
    first = store.notify("run_p|0", "run_a", NOW + 100, SAFETY)
    # Then the parent is not woken yet
    assert first is False
    assert (store.get_run("run_p") or {})["woken"] == "0"
    assert store.timer_due("resume|run_p") is None
    # When the second resolves, and both notifications are repeated
    outcomes = [
        store.notify("run_p|0", "run_b", NOW + 200, SAFETY),
        store.notify("run_p|0", "run_b", NOW + 300, SAFETY),
        store.notify("run_p|0", "run_a", NOW + 300, SAFETY),
    ]
    # Then exactly one call woke it, with the fallback resume timer behind it
    assert outcomes == [True, False, False]
    assert (store.get_run("run_p") or {})["woken"] == "1"
    assert store.timer_due("resume|run_p") == NOW + 200 + SAFETY


def test_notify_ignores_another_wait_position_and_runs_not_waiting(store: Store) -> None:
    # Given run_p parked at k=0 on run_c, and run_x executing
    executing(store)
    create(store, "run_c")
    park(store, members=("run_c",))
    executing(store, "run_x")
    # When notified for position 1, and for runs that are not WAITING or do not exist
    outcomes = [
        store.notify("run_p|1", "run_c", NOW, SAFETY),
        store.notify("run_x|0", "run_c", NOW, SAFETY),
        store.notify("gone|0", "run_c", NOW, SAFETY),
    ]
    # Then nothing is woken, and the wait at k=0 still counts run_c
    assert outcomes == [False, False, False]
    assert "woken" not in (store.get_run("run_x") or {})
    assert store.notify("run_p|0", "run_c", NOW, SAFETY) is True


def test_notify_for_a_member_the_wait_does_not_await_wakes_nothing(store: Store) -> None:
    # Given a run parked at k=0 on a duration (a stale waiter tag of an earlier attempt)
    executing(store)
    park(store, due=NOW + 60_000)
    # When an old child at k=0 notifies it / Then the duration wait keeps sleeping
    assert store.notify("run_p|0", "run_old", NOW + 10, SAFETY) is False
    assert (store.get_run("run_p") or {})["woken"] == "0"
    assert store.timer_due("resume|run_p") == NOW + 60_000


# wake -----------------------------------------------------------------------------------
def test_wake_marks_a_waiting_run_woken_and_returns_it(store: Store) -> None:
    # Given a run parked on a duration (WAIT-2)
    executing(store)
    park(store, due=NOW + 30_000)
    # When its timer is due
    record = store.wake("run_p")
    # Then it is marked woken and the stored record comes back
    assert record is not None and record["woken"] == "1"
    assert record == store.get_run("run_p")


@pytest.mark.parametrize("run_status", ["QUEUED", "EXECUTING", "COMPLETED", "CANCELED"])
def test_wake_of_a_run_that_is_not_waiting_returns_none(store: Store, run_status: str) -> None:
    # Given a run that is not WAITING (resumed already, or cancelled while parked)
    create(store, "run_a", status=run_status)
    before = store.get_run("run_a")
    # When its resume timer fires / Then nothing happens
    assert store.wake("run_a") is None
    assert store.get_run("run_a") == before
    assert store.wake("gone") is None


# claim of a parked run ------------------------------------------------------------------
def test_claim_of_a_waiting_run_needs_it_woken(store: Store) -> None:
    # Given a parked run that was not woken (a duplicate or early resume message)
    executing(store)
    park(store, due=NOW + 30_000)
    before = store.get_run("run_p")
    # When a new and a warm claim arrive / Then both are dropped and nothing changes
    assert claim(store, "run_p", token="tok-2", now=NOW + 10) == Claim("drop", reason="waiting")
    assert claim(store, "run_p", now=NOW + 10, mode="warm") == Claim("drop", reason="lease lost")
    assert store.get_run("run_p") == before


def test_resumed_claim_continues_the_same_attempt_with_its_journal(store: Store) -> None:
    # Given attempt 1 parked at k=1 after a step, then woken (STATUS-3, D-17)
    executing(store)
    store.journal_append("run_p", "tok-1", 0, "step")
    park(store, k=1, entry="wait", due=NOW + 30_000, fields={"attempt_ms": "250"})
    store.wake("run_p")
    # When the resume message claims it
    result = claim(store, "run_p", token="tok-2", now=NOW + 30_000, drop=("resume|run_p",))
    # Then it executes under the new lease in attempt 1, journal and usage intact
    assert result.action == "ok" and result.record is not None
    assert {
        f: result.record[f]
        for f in (
            "status",
            "lease",
            "lease_exp",
            "woken",
            "resumed",
            "attempt",
            "attempt_started",
            "started",
            "updated",
            "attempt_ms",
        )
    } == {
        "status": "EXECUTING",
        "lease": "tok-2",
        "lease_exp": str(NOW + 30_000 + LEASE),
        "woken": "0",
        "resumed": "1",
        "attempt": "1",
        "attempt_started": str(NOW),
        "started": str(NOW),
        "updated": str(NOW + 30_000),
        "attempt_ms": "250",
    }
    assert store.get_run("run_p") == result.record
    assert store.journal("run_p") == ["step", "wait"]
    assert store.timer_due("resume|run_p") is None
    assert store.timer_due("lease|run_p") == NOW + 30_000 + LEASE + 1000
    # And a second resume message is a duplicate of the live lease
    assert claim(store, "run_p", token="tok-3", now=NOW + 30_001) == Claim(
        "drop", reason="executing"
    )


def test_a_new_attempt_clears_the_journal_and_the_resume_state(store: Store) -> None:
    # Given attempt 1 resumed from a wait and then failed into a retry (TASK-31)
    executing(store)
    park(store, due=NOW + 100, fields={"attempt_ms": "40"})
    store.wake("run_p")
    claim(store, "run_p", token="tok-2", now=NOW + 100)
    store.journal_append("run_p", "tok-2", 1, "after-wait")
    assert store.finish_attempt("run_p", "tok-2", "QUEUED", NOW + 200, fields={})
    # When attempt 2 is claimed
    result = claim(store, "run_p", token="tok-3", now=NOW + 1000)
    # Then it starts from an empty journal with fresh usage and resume flags
    assert result.record is not None
    assert (result.record["attempt"], result.record["resumed"], result.record["attempt_ms"]) == (
        "2",
        "0",
        "0",
    )
    assert store.journal("run_p") == []


# lease timers (dead-worker check) -------------------------------------------------------
def test_claims_arm_the_lease_timer_and_mark_takeovers(store: Store) -> None:
    # Given a claimed run whose worker then died
    create(store, "run_a")
    first = claim(store, "run_a")
    armed = store.timer_due("lease|run_a")
    # When a redelivery takes it over after the lease expired
    taken = claim(store, "run_a", token="tok-2", now=NOW + LEASE)
    # Then each claim arms the check 1 s past its lease; only the takeover is marked
    assert first.record is not None and taken.record is not None
    assert (first.record["takeover"], armed) == ("0", NOW + LEASE + 1000)
    assert (taken.record["takeover"], store.timer_due("lease|run_a")) == (
        "1",
        NOW + 2 * LEASE + 1000,
    )


def test_a_resumed_claim_arms_the_lease_timer_without_takeover(store: Store) -> None:
    # Given a run parked on a duration and woken (STATUS-3)
    executing(store)
    park(store, due=NOW + 100)
    assert store.timer_due("lease|run_p") is None
    store.wake("run_p")
    # When it is claimed to resume, dropping its resume timer
    result = claim(store, "run_p", token="tok-2", now=NOW + 100, drop=("resume|run_p",))
    # Then the lease check is armed and it is not a takeover
    assert result.record is not None and result.record["takeover"] == "0"
    assert store.timer_due("lease|run_p") == NOW + 100 + LEASE + 1000


@pytest.mark.parametrize("end", ["COMPLETED", "QUEUED", "cancel", "park"])
def test_ending_or_parking_an_attempt_disarms_the_lease_timer(store: Store, end: str) -> None:
    # Given an executing run with its lease check armed
    executing(store)
    # When the attempt finishes, is re-queued, cancelled or parked
    if end == "cancel":
        assert store.transition("run_p", NOW + 1, allowed="*", status="CANCELED").ok
    elif end == "park":
        assert park(store, due=NOW + 60_000) == "parked"
    else:
        assert store.finish_attempt("run_p", "tok-1", end, NOW + 1, fields={})
    # Then nothing checks the lease any more
    assert store.timer_due("lease|run_p") is None


def test_a_wait_that_is_ready_keeps_the_lease_timer(store: Store) -> None:
    # Given an executing run / When its wait is already satisfied
    executing(store)
    assert park(store, due=NOW) == "ready"
    # Then the attempt goes on and its lease is still checked
    assert store.timer_due("lease|run_p") == NOW + LEASE + 1000


# a final status notifies the waiters ----------------------------------------------------
def test_finishing_a_run_with_waiters_schedules_its_notify_timer(store: Store) -> None:
    # Given a parent parked on run_c, and run_d nobody waits for (TRIG-7)
    executing(store)
    executing(store, "run_c")
    executing(store, "run_d")
    park(store, members=("run_c",))
    # When both complete
    awaited = store.finish_attempt("run_c", "tok-1", "COMPLETED", NOW + 50, fields={})
    alone = store.finish_attempt("run_d", "tok-1", "COMPLETED", NOW + 50, fields={})
    # Then only the awaited one says "notify the waiters" and schedules the safety net
    assert (awaited, alone) == (2, 1)
    assert store.timer_due("notify|run_c") == NOW + 50 + SAFETY
    assert store.timer_due("notify|run_d") is None


def test_a_retry_of_an_awaited_run_schedules_no_notify(store: Store) -> None:
    # Given a parent parked on run_c / When run_c's attempt ends in a retry
    executing(store)
    executing(store, "run_c")
    park(store, members=("run_c",))
    store.finish_attempt("run_c", "tok-1", "QUEUED", NOW + 50, fields={})
    # Then nothing notifies yet: the child is not finished
    assert store.timer_due("notify|run_c") is None


def test_cancelling_an_awaited_run_schedules_its_notify_timer(store: Store) -> None:
    # Given a parent parked on two queued children (TRIG-21, RUNS-7)
    executing(store)
    create(store, "run_c")
    create(store, "run_d")
    park(store, members=("run_c", "run_d"))
    # When one is delayed and the other cancelled
    store.transition("run_d", NOW + 60, allowed="QUEUED", status="DELAYED")
    store.transition("run_c", NOW + 70, allowed="*", status="CANCELED")
    # Then only the final transition schedules the notify timer
    assert store.timer_due("notify|run_c") == NOW + 70 + SAFETY
    assert store.timer_due("notify|run_d") is None


# wait idempotency keys, timers, waiters -------------------------------------------------
def test_wait_key_returns_the_first_stored_wake_up_time(store: Store) -> None:
    # Given a first wait storing its wake-up time under "k" (WAIT-6, WAIT-7)
    assert store.wait_key("k", NOW + 60_000, None) == NOW + 60_000
    # When later waits use the same key, with or without a ttl / Then they get the first time
    assert store.wait_key("k", NOW + 70_000, 3_600_000) == NOW + 60_000
    assert store.wait_key("k", NOW + 80_000, None) == NOW + 60_000
    assert store.wait_key("other", NOW + 1, None) == NOW + 1


def test_wait_key_expires_after_its_ttl(store: Store) -> None:
    # Given key "short" kept 50 ms and key "forever" without ttl
    store.wait_key("short", NOW, 50)
    store.wait_key("forever", NOW, None)
    # When the short key expired, a new wait stores its own time
    wait_for(lambda: store.wait_key("short", NOW + 1, 60_000) == NOW + 1)
    # Then the key without ttl still answers the first time
    assert store.wait_key("forever", NOW + 1, None) == NOW


def test_wait_key_rejects_a_negative_ttl(store: Store) -> None:
    # Given / When a negative ttl (Redis' SET PX refuses it) / Then both stores refuse
    with pytest.raises(StoreUnavailableError):
        store.wait_key("k", NOW, -5)
    assert store.wait_key("k", NOW + 1, None) == NOW + 1


def test_remove_timers_drops_only_the_named_members(store: Store) -> None:
    # Given three timers
    store.add_timers([("a", NOW), ("b", NOW), ("c", NOW)])
    # When two of them and an unknown one are removed
    store.remove_timers(["a", "c", "unknown"])
    store.remove_timers([])
    # Then only the other one is still due
    assert [store.timer_due(m) for m in ("a", "b", "c")] == [None, NOW, None]
    assert store.claim_timers(NOW, 10, 1000) == ["b"]


def test_waiters_of_a_member_nobody_waits_for_is_empty(store: Store) -> None:
    assert store.waiters("run_x") == []
    assert store.waiters("token:tk") == []
