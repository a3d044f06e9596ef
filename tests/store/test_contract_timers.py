"""The Store contract for the timer set (``TimerStore``, DESIGN §5): due members are handed
to one claimer at a time, oldest first, and come back when the claim lapses. Every test
runs against RedisStore and MemoryStore.
"""

from __future__ import annotations

from celery_trigger._store.base import (
    Store,
)

from .contract import NOW


def test_add_timers_sets_and_moves_due_times(store: Store) -> None:
    store.add_timers([("a", NOW + 10), ("b", NOW + 20)])
    store.add_timers([("a", NOW + 30)])
    store.add_timers([])
    assert (store.timer_due("a"), store.timer_due("b"), store.timer_due("c")) == (
        NOW + 30,
        NOW + 20,
        None,
    )


def test_claim_timers_hands_out_due_members_oldest_first_up_to_the_limit(store: Store) -> None:
    # Given three due timers and one in the future
    store.add_timers([("c", NOW - 1), ("a", NOW - 3), ("b", NOW), ("later", NOW + 1)])
    # When claiming two, then the rest
    first = store.claim_timers(NOW, 2, 1000)
    second = store.claim_timers(NOW, 10, 1000)
    # Then they come in due order, the future one stays, none is handed out twice
    assert (first, second) == (["a", "c"], ["b"])
    assert store.claim_timers(NOW, 10, 1000) == []
    assert store.timer_due("later") == NOW + 1
    assert store.timer_due("a") is None


def test_a_claim_whose_lease_lapsed_comes_back(store: Store) -> None:
    # Given a member claimed with a 1 s claim lease by a worker that then died
    store.add_timers([("m", NOW)])
    assert store.claim_timers(NOW, 10, 1000) == ["m"]
    # When another worker claims before and at the claim expiry
    early = store.claim_timers(NOW + 999, 10, 1000)
    lapsed = store.claim_timers(NOW + 1000, 10, 1000)
    # Then it is handed out again only once the claim lapsed
    assert (early, lapsed) == ([], ["m"])


def test_acked_timers_never_come_back(store: Store) -> None:
    # Given two claimed members / When one is acked
    store.add_timers([("m", NOW), ("n", NOW)])
    store.claim_timers(NOW, 10, 1000)
    store.ack_timers(["m"])
    store.ack_timers([])
    # Then only the other one returns after the claim lease
    assert store.claim_timers(NOW + 5000, 10, 1000) == ["n"]
