"""RedisStore passes every event key in KEYS (``lua/events.lua``, ``_store/redis/events.py``):
a store that has not seen a run guesses "no tags, no batch", a script refuses stale event keys
before writing anything, and the store calls again with the record's tags and batch.

Redis only: MemoryStore has no keys to pass. Two stores on one prefix stand for two processes
(the one that triggered a run, and a worker that claims it).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis

from celery_trigger._keys import Keys
from celery_trigger._store.base import MetaUpdate
from celery_trigger._store.redis import RedisStore

from .contract import LEASE, NOW, new_run

TAGS = ["alpha", "beta"]
BATCH = "batch_k"


@pytest.fixture
def client(redis_server: str, key_prefix: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_server, decode_responses=True)
    yield c
    keys = list(c.scan_iter(match=f"{key_prefix}:*", count=500))
    if keys:
        c.delete(*keys)
    c.close()


@pytest.fixture
def stores(redis_server: str, key_prefix: str) -> Iterator[tuple[RedisStore, RedisStore]]:
    creator, worker = (
        RedisStore(redis_server, prefix=key_prefix),
        RedisStore(redis_server, prefix=key_prefix),
    )
    yield creator, worker
    creator.close()
    worker.close()


def kinds(client: redis.Redis, key: str) -> list[str]:
    return [fields["k"] for _, fields in client.xrange(key)]


def script_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(
        int(stats.get(name, {}).get("calls", 0)) for name in ("cmdstat_evalsha", "cmdstat_eval")
    )


def test_a_store_that_never_saw_the_run_still_feeds_its_tag_and_batch_streams(
    stores: tuple[RedisStore, RedisStore], client: redis.Redis, key_prefix: str
) -> None:
    # Given a tagged run of a batch created by one store (RT-4)
    creator, worker = stores
    fields = {"tags": json.dumps(TAGS), "batch": BATCH}
    creator.create_runs([new_run("run_k", fields=fields, tags=list(TAGS))], NOW)
    # When another store claims it, writes its metadata and finishes it
    claim = worker.claim_attempt("run_k", "tok", NOW, LEASE, "new", ())
    assert claim.action == "ok"
    worker.apply_metadata(
        [MetaUpdate("run_k", json.dumps([{"type": "set", "key": "a", "value": 1}]))],
        NOW,
        max_bytes=10_000,
    )
    assert worker.finish_attempt("run_k", "tok", "COMPLETED", NOW + 1, fields={}) == 1
    # Then every tag stream and the batch stream got every event, in order
    keys = Keys(key_prefix)
    for key in [*(keys.tag_events(t) for t in TAGS), keys.batch_events(BATCH)]:
        assert kinds(client, key) == ["c", "s", "m", "s"]


def test_tags_added_behind_a_stores_back_are_picked_up_on_the_next_write(
    stores: tuple[RedisStore, RedisStore], client: redis.Redis, key_prefix: str
) -> None:
    # Given a worker store that has seen the run with one tag
    creator, worker = stores
    creator.create_runs([new_run("run_s", fields={"tags": '["alpha"]'}, tags=["alpha"])], NOW)
    assert worker.claim_attempt("run_s", "tok", NOW, LEASE, "new", ()).action == "ok"
    # When another store adds a tag, and the worker then finishes the run
    assert creator.add_tags("run_s", ["gamma"], 10) == ("ok", ["alpha", "gamma"])
    assert worker.finish_attempt("run_s", "tok", "COMPLETED", NOW + 1, fields={}) == 1
    # Then the new tag's stream got the finish too (the stale keys were refused and redone)
    keys = Keys(key_prefix)
    assert kinds(client, keys.tag_events("gamma")) == ["t", "s"]
    assert kinds(client, keys.tag_events("alpha")) == ["c", "s", "t", "s"]
    record = worker.get_run("run_s") or {}
    assert record["status"] == "COMPLETED"


def test_a_stale_guess_writes_nothing_before_the_retry(
    stores: tuple[RedisStore, RedisStore], client: redis.Redis
) -> None:
    # Given a run with a batch, unknown to the worker store
    creator, worker = stores
    creator.create_runs([new_run("run_b", fields={"batch": BATCH})], NOW)
    ev_before = int(client.hget(f"{creator.keys.prefix}:run:run_b", "ev") or 0)
    # When the worker claims it (first call refused as stale, second call applied)
    calls = script_calls(client)
    assert worker.claim_attempt("run_b", "tok", NOW, LEASE, "new", ()).action == "ok"
    # Then exactly two script calls ran and the change was applied once
    assert script_calls(client) - calls == 2
    assert int(client.hget(f"{creator.keys.prefix}:run:run_b", "ev") or 0) == ev_before + 1
    assert (worker.get_run("run_b") or {})["attempt"] == "1"


def test_hot_paths_cost_one_script_call_when_the_guess_is_right(
    stores: tuple[RedisStore, RedisStore], client: redis.Redis
) -> None:
    # Given an untagged run created elsewhere (the common case)
    creator, worker = stores
    calls = script_calls(client)
    creator.create_runs([new_run("run_h")], NOW)
    # When another store claims and finishes it
    assert worker.claim_attempt("run_h", "tok", NOW, LEASE, "new", ()).action == "ok"
    assert worker.finish_attempt("run_h", "tok", "COMPLETED", NOW + 1, fields={}) == 1
    # Then create, claim and finish were one script call each
    assert script_calls(client) - calls == 3
