"""The Store contract for the run's own log (``LogStore``, SEMANTICS §14): appends in order,
caps by count and by bytes that drop the oldest entries and count them, reads of the newest
entries, realtime reads after an id, and the wake-up of a listener.

Every test runs against RedisStore (real Redis) and MemoryStore (the ``store`` fixture),
except the expiry check, which only Redis has.
"""

from __future__ import annotations

import json

import pytest

from celery_trigger._store.base import Feed, Store
from tests.helpers import redis_client, wait_for

BIG = 1_000_000
TTL = 60_000


def entries(*values: object) -> list[str]:
    return [json.dumps({"message": v}) for v in values]


def messages(store: Store, run_id: str, limit: int = 100) -> list[object]:
    return [json.loads(text)["message"] for _, text in store.read_logs(run_id, limit)[1]]


def test_entries_are_kept_in_order_and_read_newest_first_limited(store: Store) -> None:
    # Given two appends  When the log is read  Then the entries come back oldest first
    assert store.append_logs("run_l", entries(1, 2), max_count=10, max_bytes=BIG, ttl_ms=TTL) == 0
    store.append_logs("run_l", entries(3), max_count=10, max_bytes=BIG, ttl_ms=TTL)
    assert messages(store, "run_l") == [1, 2, 3]
    # and a limit keeps the newest ones
    assert messages(store, "run_l", 2) == [2, 3]
    assert store.read_logs("run_l", 0) == (0, [])
    assert store.read_logs("run_missing", 10) == (0, [])


def test_the_count_cap_drops_the_oldest_and_counts_them(store: Store) -> None:
    # Given a cap of 3 entries  When 5 are appended  Then the 2 oldest are gone and counted
    dropped = store.append_logs("run_l", entries(*range(5)), max_count=3, max_bytes=BIG, ttl_ms=TTL)
    assert dropped == 2
    assert messages(store, "run_l") == [2, 3, 4]
    store.append_logs("run_l", entries(5), max_count=3, max_bytes=BIG, ttl_ms=TTL)
    assert store.read_logs("run_l", 10)[0] == 3


def test_the_byte_cap_drops_the_oldest_until_the_log_fits(store: Store) -> None:
    # Given entries of 15 bytes and a cap of 40 bytes  When 4 are appended  Then 2 remain
    values = entries("aa", "bb", "cc", "dd")
    assert {len(v) for v in values} == {len('{"message": "aa"}')}
    size = len(values[0])
    dropped = store.append_logs("run_l", values, max_count=100, max_bytes=2 * size + 1, ttl_ms=TTL)
    assert dropped == 2
    assert messages(store, "run_l") == ["cc", "dd"]
    # Then the bytes of dropped entries are given back: two more fit after two drops
    store.append_logs("run_l", entries("ee"), max_count=100, max_bytes=2 * size + 1, ttl_ms=TTL)
    assert messages(store, "run_l") == ["dd", "ee"]


def test_a_reader_follows_the_log_after_an_id_and_is_woken(store: Store) -> None:
    # Given a listener on the run's log feed
    listener = store.listener()
    try:
        listener.subscribe([Feed.logs("run_l")])
        wait_for(lambda: ("subscribe", Feed.logs("run_l")) in listener.get(0.1), timeout=5)
        store.append_logs("run_l", entries("a"), max_count=10, max_bytes=BIG, ttl_ms=TTL)
        # When an entry is appended  Then the listener is woken
        wait_for(lambda: ("message", Feed.logs("run_l")) in listener.get(0.1), timeout=5)
    finally:
        listener.close()
    first = store.stream_tail(Feed.logs("run_l"))
    store.append_logs("run_l", entries("b"), max_count=10, max_bytes=BIG, ttl_ms=TTL)
    # and a read after the first id returns only the new entry
    rows = store.read_stream(Feed.logs("run_l"), first, 10)
    assert [json.loads(f["d"])["message"] for _, f in rows] == ["b"]


@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_the_log_expires_ttl_after_its_last_append(store: Store) -> None:
    # Given an append with a ttl  Then both keys of the log expire within it
    store.append_logs("run_l", entries("a"), max_count=10, max_bytes=BIG, ttl_ms=TTL)
    client = redis_client(store)
    keys = store.keys  # type: ignore[attr-defined]
    for key in (keys.run_logs("run_l"), keys.run_logs_meta("run_l")):
        assert 0 < client.pttl(key) <= TTL
