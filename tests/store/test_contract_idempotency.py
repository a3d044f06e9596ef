"""The Store contract for idempotency keys (``IdempotencyStore``, SEMANTICS §5): a key names
at most one owner, expires with its ttl, and is released only by its owner
(compare-and-delete). Every test runs against RedisStore and MemoryStore.
"""

from __future__ import annotations

from celery_trigger._store.base import (
    Store,
)
from tests.helpers import wait_for

from .contract import create, idem


def test_idempotency_key_expires_after_its_ttl(store: Store) -> None:
    # Given run_a owns "k" for 50 ms (IDEM-5)
    create(store, "run_a", idempotency_key="k", idempotency_ttl_ms=50)
    # When the ttl has passed, Then a new create with the key makes a new run
    counter = iter(range(10_000))

    def fresh_create() -> bool:
        _, cached = create(
            store, f"run_{next(counter)}", idempotency_key="k", idempotency_ttl_ms=60_000
        )
        return not cached

    wait_for(fresh_create)
    assert store.get_run("run_a") is not None


def test_delete_idempotency_key_frees_the_key_once(store: Store) -> None:
    # Given run_a owns "k" (IDEM-13)
    create(store, "run_a", idempotency_key="k", idempotency_ttl_ms=60_000)
    # When the key is reset twice
    first = store.delete_idempotency_key("t.send", "k")
    second = store.delete_idempotency_key("t.send", "k")
    # Then only the first deleted something and the key is free again
    assert (first, second) == (True, False)
    assert create(store, "run_b", idempotency_key="k", idempotency_ttl_ms=60_000) == (
        "run_b",
        False,
    )


def test_release_only_when_the_owner_still_holds_the_key(store: Store) -> None:
    """IDEM-13, §5.2: compare-and-delete; with clear_record the owner forgets its key."""
    # Given run_a owning key k
    create(
        store,
        "run_a",
        idempotency_key="k",
        idempotency_ttl_ms=60_000,
        fields={"idem": "user-k", "idem_key": "k", "idem_exp": "1"},
    )
    # When another run tries to release it, then its owner does
    refused = store.release_idempotency_key("t.send", "k", "run_b", clear_record=True)
    owner_before = store.idempotency_owner("t.send", "k")
    released = store.release_idempotency_key("t.send", "k", "run_a", clear_record=True)
    # Then only the owner's release counts, and the key and the record fields are gone
    assert (refused, owner_before, released) == (False, "run_a", True)
    assert store.idempotency_owner("t.send", "k") is None
    record = store.get_run("run_a") or {}
    assert not {"idem", "idem_key", "idem_exp"} & set(record)
    # And a new run can take the key
    assert create(store, "run_c", idempotency_key="k", idempotency_ttl_ms=60_000) == (
        "run_c",
        False,
    )
    assert store.get_run("run_c") is not None and idem("k")


def test_release_without_clearing_keeps_the_record_fields(store: Store) -> None:
    """§5.2 (expiry): the key goes, the run still shows which key it had."""
    create(
        store,
        "run_a",
        idempotency_key="k",
        idempotency_ttl_ms=60_000,
        fields={"idem": "user-k", "idem_key": "k"},
    )
    assert store.release_idempotency_key("t.send", "k", "run_a", clear_record=False)
    assert (store.get_run("run_a") or {}).get("idem") == "user-k"
    assert store.idempotency_owner("t.send", "k") is None


def test_batch_key_first_claim_wins_and_expires(store: Store) -> None:
    """IDEM-12: SET NX semantics; the key lives for its TTL."""
    assert store.get_batch_key("h") is None
    assert store.claim_batch_key("h", "batch_1", 60_000) == "batch_1"
    assert store.claim_batch_key("h", "batch_2", 60_000) == "batch_1"
    assert store.get_batch_key("h") == "batch_1"
    assert store.claim_batch_key("short", "batch_3", 1) == "batch_3"
    from tests.helpers import wait_for

    wait_for(lambda: store.get_batch_key("short") is None, timeout=2)
