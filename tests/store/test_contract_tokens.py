"""The Store contract for waitpoint tokens (``TokenStore``, SEMANTICS §7): the first
completion or the timeout wins, an idempotency key names one live token, listings page by
creation time. Every test runs against RedisStore and MemoryStore.
"""

from __future__ import annotations

from celery_trigger._store.base import Created, Store
from tests.helpers import wait_for

from .contract import NOW
from .test_contract_durable import SAFETY, executing, park, token


def test_create_token_writes_the_record_the_indexes_and_the_timeout(store: Store) -> None:
    # Given / When a token with tags and a timeout and one without (WAIT-13, WAIT-16)
    created = token(store, "tk_a", timeout_ms=NOW + 1000, tags=("order:1", "vip"))
    token(store, "tk_b", now=NOW + 1)
    # Then both are stored and listed; only the first has a timeout timer
    assert created == Created("tk_a", False)
    assert store.get_token("tk_a") == {"id": "tk_a", "status": "WAITING", "created": str(NOW)}
    assert store.get_token("missing") is None
    assert store.list_token_ids(tag=None, before=None, count=10) == [
        ("tk_b", NOW + 1),
        ("tk_a", NOW),
    ]
    assert store.list_token_ids(tag="vip", before=None, count=10) == [("tk_a", NOW)]
    assert store.timer_due("tokento|tk_a") == NOW + 1000
    assert store.timer_due("tokento|tk_b") is None


def test_create_token_with_a_live_key_returns_the_owner_and_writes_nothing(store: Store) -> None:
    # Given a token owning key "x" (WAIT-11)
    token(store, "tk_a", key="x", key_ttl_ms=60_000)
    # When another token is created with the same key, tags and a timeout
    again = token(store, "tk_b", key="x", key_ttl_ms=60_000, timeout_ms=NOW, tags=("t",))
    # Then the owner comes back cached and none of tk_b's writes happened
    assert again == Created("tk_a", True)
    assert store.get_token("tk_b") is None
    assert store.timer_due("tokento|tk_b") is None
    assert store.list_token_ids(tag="t", before=None, count=10) == []
    assert token(store, "tk_c", key="y") == Created("tk_c", False)


def test_token_key_expires_after_its_ttl_and_never_without_one(store: Store) -> None:
    # Given key "short" kept 50 ms and key "forever" without ttl (WAIT-11, D-7)
    token(store, "tk_short", key="short", key_ttl_ms=50)
    token(store, "tk_forever", key="forever", key_ttl_ms=0)
    counter = iter(range(10_000))
    # When the short one has expired
    wait_for(lambda: not token(store, f"tk_{next(counter)}", key="short", key_ttl_ms=60_000).cached)
    # Then the key without ttl still names its owner
    assert token(store, "tk_other", key="forever") == Created("tk_forever", True)


def test_complete_token_first_wins(store: Store) -> None:
    # Given a waiting token with a timeout timer and nobody parked on it (WAIT-9, WAIT-10)
    token(store, "tk", timeout_ms=NOW + 60_000)
    # When it is completed twice, and then timed out
    first = store.complete_token("tk", NOW + 10, "COMPLETED", "output", '{"a": 1}')
    after_first = store.get_token("tk")
    second = store.complete_token("tk", NOW + 20, "COMPLETED", "output", '{"a": 2}')
    late = store.complete_token("tk", NOW + 30, "TIMED_OUT", "error", "{}")
    # Then the first wins: stamped, timeout timer gone, no notify without waiters
    assert (first, second, late) == (("ok", []), ("done", []), ("done", []))
    assert after_first == {
        "id": "tk",
        "status": "COMPLETED",
        "created": str(NOW),
        "completed_at": str(NOW + 10),
        "output": '{"a": 1}',
    }
    assert store.get_token("tk") == after_first
    assert store.timer_due("tokento|tk") is None
    assert store.timer_due("notify|token:tk") is None
    assert store.complete_token("missing", NOW, "COMPLETED", "output", "1") == ("missing", [])


def test_a_timed_out_token_stays_timed_out(store: Store) -> None:
    # Given a token that timed out (WAIT-8, WAIT-10)
    token(store, "tk", timeout_ms=NOW)
    assert store.complete_token("tk", NOW, "TIMED_OUT", "error", '{"code": "T"}')[0] == "ok"
    # When someone completes it afterwards / Then nothing changes
    assert store.complete_token("tk", NOW + 5, "COMPLETED", "output", "1") == ("done", [])
    assert (store.get_token("tk") or {})["status"] == "TIMED_OUT"
    assert "output" not in (store.get_token("tk") or {})


def test_completing_a_token_returns_its_waiters_and_schedules_notify(store: Store) -> None:
    # Given two runs parked on one token (WAIT-15)
    token(store, "tk")
    for run_id in ("run_a", "run_b"):
        executing(store, run_id)
        park(store, run_id, members=("token:tk",))
    # When the token is completed
    result, waiters = store.complete_token("tk", NOW + 100, "COMPLETED", "output", "1")
    # Then both waiters come back, the safety net is scheduled, and notifying wakes each
    assert (result, sorted(waiters)) == ("ok", ["run_a|0", "run_b|0"])
    assert store.timer_due("notify|token:tk") == NOW + 100 + SAFETY
    assert [store.notify(w, "token:tk", NOW + 101, SAFETY) for w in sorted(waiters)] == [True, True]


def test_list_token_ids_pages_newest_first_without_repeats(store: Store) -> None:
    # Given tokens created at three instants, three in the same ms (WAIT-13)
    token(store, "tk_a", now=NOW)
    for token_id in ("tk_b", "tk_c", "tk_d"):
        token(store, token_id, now=NOW + 5, tags=("t",))
    token(store, "tk_e", now=NOW + 9)
    # When paging two at a time
    seen: list[tuple[str, int]] = []
    cursor: tuple[int, str] | None = None
    while page := store.list_token_ids(tag=None, before=cursor, count=2):
        assert len(page) <= 2
        seen.extend(page)
        cursor = (page[-1][1], page[-1][0])
    # Then every token appears once, ties by id descending; a tag lists only its own
    assert seen == [
        ("tk_e", NOW + 9),
        ("tk_d", NOW + 5),
        ("tk_c", NOW + 5),
        ("tk_b", NOW + 5),
        ("tk_a", NOW),
    ]
    assert store.list_token_ids(tag="t", before=(NOW + 5, "tk_c"), count=10) == [("tk_b", NOW + 5)]
    assert store.list_token_ids(tag=None, before=None, count=0) == []
