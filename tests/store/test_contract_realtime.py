"""The Store contract for realtime (DESIGN §7, SEMANTICS §12): stream reads, the change
events every state-changing operation appends and publishes, listeners, chunk streams and
single-use marks.

Every test runs against RedisStore (real Redis) and MemoryStore (the ``store`` fixture),
except the key-expiry checks, which only Redis has (MemoryStore lives as long as its
process). The events (``lua/events.lua``, ``memory_events.py``): ``{k: kind}`` on
``Feed.run(run)`` and ``{r: run id, k: kind}`` on ``Feed.tag(tag)`` for each tag the
record carries and on ``Feed.batch(batch)``; kinds ``c`` created, ``s`` status, ``m``
metadata, ``t`` tags, ``n`` new stream. An operation that changes nothing appends nothing.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from celery_trigger._store.base import Feed, MetaUpdate, Store, feed_key
from tests.helpers import redis_client, wait_for

from .contract import NOW, claim, create, new_run
from .test_contract_durable import park

TAGS = ("a", "b")
BATCH = "batch_1"
LONG_MS = 10_000  # a wait that must be woken long before it times out
redis_only = pytest.mark.parametrize("store", ["redis"], indirect=True)


def order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq)


def chunks(store: Store, run_id: str, key: str) -> list[Any]:
    entries = store.read_stream(Feed.stream(run_id, key), "0-0", 1000)
    return [json.loads(fields["d"]) for _, fields in entries]


def append(
    store: Store, key: str, values: range | list[Any], *, seq: int, writer: str = "run_e:1"
) -> tuple[str, int]:
    return store.append_stream("run_e", key, writer, seq, [json.dumps(v) for v in values])


class EventLog:
    """The events of a run: its change counter (field "ev", the run's own events are a
    pub/sub channel only) and the event streams of each of its tags and of its batch.

    ``mark()`` remembers the counter and each stream's tail; ``since()`` returns what came
    after.
    """

    def __init__(self, store: Store, run_id: str, tags: tuple[str, ...]) -> None:
        self.store, self.run_id = store, run_id
        self.run_key = Feed.run(run_id)
        self.index_keys = [Feed.tag(t) for t in tags] + [Feed.batch(BATCH)]
        self.mark()

    def counter(self) -> int:
        return int((self.store.get_run(self.run_id) or {}).get("ev") or 0)

    def mark(self) -> None:
        self.ev = self.counter()
        self.pos = {k: self.store.stream_tail(k) for k in self.index_keys}

    def since(self) -> dict[str, Any]:
        return {
            "ev": self.counter() - self.ev,
            **{
                key: [fields for _, fields in self.store.read_stream(key, after, 100)]
                for key, after in self.pos.items()
            },
        }

    def expect(self, kind: str | None) -> None:
        """Exactly one ``kind`` event since the mark (None: no event at all)."""
        index_events = [{"r": self.run_id, "k": kind}] if kind else []
        assert self.since() == {
            "ev": 1 if kind else 0,
            **{key: index_events for key in self.index_keys},
        }
        self.mark()


def tagged(store: Store, run_id: str = "run_e", **kwargs: Any) -> EventLog:
    """Create ``run_id`` tagged a, b in batch_1 and return its feed, marked after creation."""
    fields = {"created": str(NOW), "tags": json.dumps(list(TAGS)), "batch": BATCH}
    create(store, run_id, fields=fields, tags=list(TAGS), **kwargs)
    return EventLog(store, run_id, TAGS)


def executing_tagged(store: Store) -> EventLog:
    feed = tagged(store)
    assert claim(store, "run_e").action == "ok"
    feed.mark()
    return feed


# stream reads -------------------------------------------------------------------------
def test_tail_of_a_missing_or_empty_stream_is_zero(store: Store) -> None:
    """§7: a reader starting on a stream nobody wrote yet starts at "0-0"."""
    assert store.stream_tail(Feed.run("nobody")) == "0-0"
    assert store.read_stream(Feed.run("nobody"), "0-0", 10) == []


def test_ids_increase_and_reads_are_strictly_after_oldest_first(store: Store) -> None:
    """§7: ids strictly increase; read_stream(after) starts after ``after`` and honours count."""
    # Given five chunks appended one call at a time
    create(store, "run_e")
    for i in range(5):
        assert append(store, "out", [i], seq=i) == ("ok", 1)
    key = Feed.stream("run_e", "out")
    entries = store.read_stream(key, "0-0", 100)
    ids = [entry_id for entry_id, _ in entries]
    # Then the ids strictly increase, the tail is the last one, the fields are {d: JSON}
    assert [order(i) for i in ids] == sorted({order(i) for i in ids}) and len(ids) == 5
    assert store.stream_tail(key) == ids[-1]
    assert [fields for _, fields in entries] == [{"d": str(i)} for i in range(5)]
    # And a read after an id starts strictly after it, oldest first, at most count entries
    assert store.read_stream(key, ids[1], 2) == entries[2:4]
    assert store.read_stream(key, ids[1], 100) == entries[2:]
    assert store.read_stream(key, ids[-1], 100) == []
    assert store.read_stream(key, "0-0", 0) == [] and store.read_stream(key, "0-0", -1) == []


# notifications (pub/sub) -----------------------------------------------------------------
def confirm(listener: Any, kind: str, channels: list[Feed]) -> None:
    """Wait for the listener's ``kind`` ("subscribe" / "unsubscribe") confirmations."""
    seen: set[Feed] = set()

    def done() -> bool:
        seen.update(c for k, c in listener.get(0.05) if k == kind)
        return seen >= set(channels)

    wait_for(done, timeout=5)


def listen(store: Store, channels: list[Feed]) -> Any:
    """A listener subscribed to ``channels``, with every confirmation received."""
    listener = store.listener()
    listener.subscribe(channels)
    confirm(listener, "subscribe", channels)
    return listener


def messages(listener: Any, until: set[Feed] | None = None, timeout: float = 5.0) -> list[Feed]:
    """Channels of the messages received: until each of ``until`` was seen, or (None) what
    arrives within a short wait."""
    got: list[Feed] = []
    if until is None:
        got.extend(c for kind, c in listener.get(0.1) if kind == "message")
        return got

    def done() -> bool:
        got.extend(c for kind, c in listener.get(0.05) if kind == "message")
        return set(got) >= until

    wait_for(done, timeout=timeout)
    return got


def test_every_event_is_published_on_its_streams_channel(store: Store) -> None:
    """§7: each append to a run's, a tag's and a batch's event stream is also published on a
    channel named like the stream; a listener hears only the channels it subscribed to."""
    # Given a tagged run in a batch and a listener on its run, tag "a" and batch channels
    feed = tagged(store)
    watched = [feed.run_key, Feed.tag("a"), Feed.batch(BATCH)]
    listener = listen(store, watched)
    try:
        # When a claim changes its status
        assert claim(store, "run_e").action == "ok"
        # Then the three channels get a message, and tag "b" (not subscribed) none
        got = messages(listener, until=set(watched))
        assert Feed.tag("b") not in got
    finally:
        listener.close()


def test_a_listener_hears_nothing_before_subscribing_or_after_unsubscribing(
    store: Store,
) -> None:
    """§7: subscriptions start at their confirmation and end at the confirmation of their
    unsubscribe (a publish racing the UNSUBSCRIBE from another connection may still land)."""
    feed = tagged(store)
    listener = listen(store, [Feed.hub("h1")])
    try:
        store.transition("run_e", NOW, allowed="*", fields={"n": "1"})
        assert messages(listener) == []
        listener.subscribe([feed.run_key])
        confirm(listener, "subscribe", [feed.run_key])
        store.transition("run_e", NOW, allowed="*", fields={"n": "2"})
        assert messages(listener, until={feed.run_key}) == [feed.run_key]
        listener.unsubscribe([feed.run_key])
        confirm(listener, "unsubscribe", [feed.run_key])  # effective from its confirmation
        store.transition("run_e", NOW, allowed="*", fields={"n": "3"})
        assert feed.run_key not in messages(listener)
    finally:
        listener.close()


def test_publish_wakes_a_listener_blocked_in_another_thread(store: Store) -> None:
    """§7: the hub's thread waits in ``get``; a publish from another thread ends the wait."""
    channel = Feed.hub("h2")
    listener = listen(store, [channel])
    result: list[tuple[str, str]] = []
    thread = threading.Thread(target=lambda: result.extend(listener.get(LONG_MS / 1000)))
    started = time.monotonic()
    thread.start()
    try:
        store.publish(channel)
    finally:
        thread.join(timeout=LONG_MS / 1000 + 5)
        listener.close()
    assert not thread.is_alive()
    assert time.monotonic() - started < LONG_MS / 2000
    assert result == [("message", channel)]


def test_chunks_are_published_on_the_chunk_streams_channel(store: Store) -> None:
    """§12.1: subscribers following a run's stream are woken by each append."""
    create(store, "run_e")
    key = Feed.stream("run_e", "out")
    listener = listen(store, [key, Feed.run("run_e")])
    try:
        append(store, "out", ["a"], seq=0)
        assert set(messages(listener, until={key, Feed.run("run_e")})) == {
            key,
            Feed.run("run_e"),  # the new stream's "n" event
        }
        append(store, "out", ["b"], seq=1)
        assert messages(listener, until={key}) == [key]
    finally:
        listener.close()


# events of each operation -------------------------------------------------------------
def test_create_emits_created_to_the_run_its_tags_and_its_batch(store: Store) -> None:
    """§7: "c" on every stream; a cached create (idempotency hit) emits nothing."""
    # Given nothing / When a tagged run in a batch is created
    feed = EventLog(store, "run_e", TAGS)
    fields = {"created": str(NOW), "tags": json.dumps(list(TAGS)), "batch": BATCH}
    opts: dict[str, Any] = {"idempotency_key": "k", "idempotency_ttl_ms": 60_000}
    assert create(store, "run_e", fields=fields, tags=list(TAGS), **opts) == ("run_e", False)
    # Then each stream got exactly one "c"
    feed.expect("c")
    # And a second create with the same key returns the owner and emits nothing
    assert create(store, "run_x", fields=fields, tags=list(TAGS), **opts) == ("run_e", True)
    feed.expect(None)


def test_runs_created_together_each_announce_themselves_on_the_batch(store: Store) -> None:
    """§12.1 subscribeToBatch: one "c" per run, naming it, in creation order."""
    fields = {"created": str(NOW), "batch": BATCH}
    store.create_runs([new_run(f"run_{i}", fields=fields) for i in range(3)], NOW)
    entries = store.read_stream(Feed.batch(BATCH), "0-0", 10)
    assert [f for _, f in entries] == [{"r": f"run_{i}", "k": "c"} for i in range(3)]


def test_a_run_without_tags_or_batch_emits_only_on_its_own_channel(store: Store) -> None:
    """§7: no tag or batch streams are written for a run that has none, and a run's own
    events leave no stream behind (the record and its "ev" counter are the truth)."""
    listener = listen(store, [Feed.run("run_plain")])
    try:
        create(store, "run_plain")
        assert messages(listener, until={Feed.run("run_plain")})
    finally:
        listener.close()
    assert (store.get_run("run_plain") or {}).get("ev") == "1"
    assert store.stream_tail(Feed.run("run_plain")) == "0-0"
    assert store.stream_tail(Feed.tag("a")) == "0-0"
    assert store.stream_tail(Feed.batch(BATCH)) == "0-0"


def test_claims_emit_status_and_a_dropped_claim_emits_nothing(store: Store) -> None:
    """§7: a new attempt and a resumed one emit "s"; a duplicate delivery is dropped silently."""
    # Given a queued tagged run
    feed = tagged(store)
    # When it is claimed / Then "s"
    assert claim(store, "run_e").action == "ok"
    feed.expect("s")
    # When a duplicate delivery arrives under the live lease / Then nothing
    assert claim(store, "run_e", token="tok-2", now=NOW + 1).action == "drop"
    feed.expect(None)
    # When it parks, is woken and the resume claims it / Then "s" for the park and the resume
    assert park(store, "run_e", due=NOW + 100) == "parked"
    feed.expect("s")
    assert store.wake("run_e") is not None
    feed.mark()
    assert claim(store, "run_e", token="tok-2", now=NOW + 100).action == "ok"
    feed.expect("s")


def test_finish_emits_status_and_a_lost_lease_emits_nothing(store: Store) -> None:
    """§7: finish_attempt emits "s" when written, nothing when the lease is not ours."""
    feed = executing_tagged(store)
    assert store.finish_attempt("run_e", "tok-x", "COMPLETED", NOW + 5, fields={}) == 0
    feed.expect(None)
    assert store.finish_attempt("run_e", "tok-1", "COMPLETED", NOW + 5, fields={"output": "1"})
    feed.expect("s")


def test_transition_emits_only_when_it_changes_the_status_or_fields(store: Store) -> None:
    """§7: a status or field write emits "s"; a rejected or read-only transition nothing."""
    feed = tagged(store)
    # When the transition is not allowed from QUEUED / Then nothing
    assert not store.transition("run_e", NOW + 1, allowed="DELAYED", status="QUEUED").ok
    feed.expect(None)
    # When it only reads the record / Then nothing
    assert store.transition("run_e", NOW + 1, allowed="*").ok
    feed.expect(None)
    # When it only writes fields / Then "s"
    assert store.transition("run_e", NOW + 1, allowed="*", fields={"delay_until": "5"}).ok
    feed.expect("s")
    # When it changes the status / Then "s"
    assert store.transition("run_e", NOW + 2, allowed="QUEUED", status="CANCELED").ok
    feed.expect("s")


def test_park_emits_status_only_when_it_parks(store: Store) -> None:
    """§7: "ready" (nothing to wait for) and "lost" leave the run as it is: no event."""
    feed = executing_tagged(store)
    create(store, "run_done", status="COMPLETED")
    feed.mark()
    assert park(store, "run_e", members=("run_done",)) == "ready"
    feed.expect(None)
    assert park(store, "run_e", k=1, due=NOW + 60_000, token="tok-x") == "lost"
    feed.expect(None)
    assert park(store, "run_e", k=1, due=NOW + 60_000) == "parked"
    feed.expect("s")


def test_metadata_emits_only_when_the_document_is_written(store: Store) -> None:
    """§7, §8: "m" for a write; nothing for no-op operations, over the limit, or closed."""
    feed = tagged(store)

    def apply(ops: list[dict[str, Any]], **kwargs: Any) -> str:
        update = MetaUpdate("run_e", json.dumps(ops), window_ms=kwargs.get("window_ms"))
        now = kwargs.get("now", NOW + 1)
        return store.apply_metadata([update], now, max_bytes=kwargs.get("limit", 1000))[0].status

    assert apply([{"type": "set", "key": "progress", "value": 0.5}]) == "ok"
    feed.expect("m")
    assert apply([{"type": "remove", "key": "progress", "value": 1}]) == "ok"  # not an array
    feed.expect(None)
    assert apply([{"type": "set", "key": "big", "value": "x" * 2000}]) == "too_large"
    feed.expect(None)
    assert apply([{"type": "increment", "key": "n", "value": "x"}]) == "invalid"
    feed.expect(None)
    assert store.transition("run_e", NOW + 2, allowed="*", status="COMPLETED").ok
    assert store.get_run("run_e")["finished"] == str(NOW + 2)  # type: ignore[index]
    feed.mark()
    closed = apply([{"type": "set", "key": "late", "value": 1}], window_ms=10, now=NOW + 100)
    assert closed == "closed"
    feed.expect(None)


def test_tags_add_emits_to_the_old_tags_the_new_tag_and_the_batch(store: Store) -> None:
    """§7, TAG-1: "t" on every stream of the run, including the tag it now carries."""
    # Given a run tagged a, b
    tagged(store)
    feed = EventLog(store, "run_e", (*TAGS, "c"))
    # When c is added / Then "t" on the run, a, b, c and the batch
    assert store.add_tags("run_e", ["b", "c"], 10) == ("ok", ["a", "b", "c"])
    feed.expect("t")
    # When only tags it has are added, or too many / Then nothing
    assert store.add_tags("run_e", ["a", "c"], 10) == ("ok", ["a", "b", "c"])
    feed.expect(None)
    assert store.add_tags("run_e", ["d", "e"], 4) == ("limit", ["a", "b", "c"])
    feed.expect(None)
    assert store.stream_tail(Feed.tag("d")) == "0-0"
    # And a later change reaches the new tag's stream too
    assert store.transition("run_e", NOW + 1, allowed="*", status="CANCELED").ok
    feed.expect("s")


# append_stream ------------------------------------------------------------------------
def test_append_stream_keeps_order_and_lists_new_keys_once(store: Store) -> None:
    """RT-4, §12.1: chunks in order; "streams" lists keys in creation order; "n" once per key."""
    feed = tagged(store)
    assert append(store, "ai", ["h", "e"], seq=0) == ("ok", 2)
    feed.expect("n")
    assert append(store, "ai", [{"l": 1}, None], seq=2) == ("ok", 2)
    feed.expect(None)
    assert append(store, "logs/é", [1], seq=0) == ("ok", 1)
    feed.expect("n")
    assert chunks(store, "run_e", "ai") == ["h", "e", {"l": 1}, None]
    assert chunks(store, "run_e", "logs/é") == [1]
    record = store.get_run("run_e") or {}
    assert json.loads(record["streams"]) == ["ai", "logs/é"]
    # And the chunks of one stream do not reach another
    assert chunks(store, "run_e", "other") == []


def test_a_replay_skips_what_is_there_and_a_prefix_resend_keeps_the_next_seq(store: Store) -> None:
    """§12.1: a replayed attempt resends seq 0.. again; only new chunks land, once, in order."""
    create(store, "run_e")
    # When the writer sends 0..4, resends 0..1, then 3..5, then continues at 6
    assert append(store, "out", range(5), seq=0) == ("ok", 5)
    assert append(store, "out", range(2), seq=0) == ("ok", 0)
    assert append(store, "out", range(3, 6), seq=3) == ("ok", 1)
    assert append(store, "out", range(6, 7), seq=6) == ("ok", 1)
    # Then each chunk is there once, in order
    assert chunks(store, "run_e", "out") == list(range(7))
    assert (store.get_run("run_e") or {})["st:out"] == "run_e:1|7"


def test_another_writer_appends_after_what_is_there(store: Store) -> None:
    """§12.1: a retry (new attempt) restarts at seq 0 and its chunks follow the earlier ones."""
    create(store, "run_e")
    assert append(store, "out", ["a", "b"], seq=0) == ("ok", 2)
    assert append(store, "out", ["c"], seq=0, writer="run_e:2") == ("ok", 1)
    assert append(store, "out", ["c", "d"], seq=0, writer="run_e:2") == ("ok", 1)
    assert chunks(store, "run_e", "out") == ["a", "b", "c", "d"]
    assert json.loads((store.get_run("run_e") or {})["streams"]) == ["out"]


def test_append_to_a_missing_run_writes_nothing(store: Store) -> None:
    """§12.1: no run, no stream: ("missing", 0)."""
    assert append(store, "out", ["a"], seq=0) == ("missing", 0)
    assert store.stream_tail(Feed.stream("run_e", "out")) == "0-0"
    assert store.get_run("run_e") is None
    assert store.stream_tail(Feed.run("run_e")) == "0-0"


# mark_token_used ------------------------------------------------------------------------
def test_mark_token_used_is_true_only_the_first_time_per_key(store: Store) -> None:
    """RT-6: a single-use token's jti is marked used once; other jtis are independent."""
    assert store.mark_token_used("jti_1", 60_000) is True
    assert store.mark_token_used("jti_1", 60_000) is False
    assert store.mark_token_used("jti_2", 60_000) is True


def test_mark_token_used_mark_expires_after_its_ttl(store: Store) -> None:
    """RT-6: the mark lives as long as the token (ttl), then the key is free again."""
    assert store.mark_token_used("jti_short", 30) is True
    wait_for(lambda: store.mark_token_used("jti_short", 60_000), timeout=5)
    assert store.mark_token_used("jti_short", 60_000) is False


# expiry (Redis only) ------------------------------------------------------------------
@redis_only
def test_event_and_chunk_streams_expire(store: Store) -> None:
    """§7: event streams expire 7 days, chunk streams 28 days after their last entry,
    single-use marks with their ttl."""
    feed = tagged(store)
    append(store, "out", ["a"], seq=0)
    store.mark_token_used("jti", 60_000)
    client = redis_client(store)
    week, four_weeks = 7 * 86_400_000, 28 * 86_400_000
    keys: Any = store.keys  # type: ignore[attr-defined]  # RedisStore's key names
    for key in feed.index_keys:
        assert week - 60_000 < client.pttl(feed_key(keys, key)) <= week, key
    assert not client.exists(feed_key(keys, feed.run_key))  # a run's own events are a channel only
    assert four_weeks - 60_000 < client.pttl(keys.run_stream("run_e", "out")) <= four_weeks
    assert 0 < client.pttl(keys.token_use("jti")) <= 60_000


def test_the_change_counter_counts_every_event(store: Store) -> None:
    """§7: "ev" grows by one per event, so a reader can tell the newer of two records."""
    create(store, "run_e")
    for i in range(20):
        store.transition("run_e", NOW + i, allowed="*", fields={"n": str(i)})
    assert (store.get_run("run_e") or {}).get("ev") == "21"
