"""The Store contract for run metadata, tags and idempotency-key housekeeping (SEMANTICS §5, §8,
§9): ``apply_metadata`` (``metadata_apply.lua``), ``add_tags`` (``tags_add.lua``),
``release_idempotency_key`` (``idem_clear.lua``) and the batch-key pair.

Every test runs against RedisStore (real Redis) and MemoryStore (the ``store`` fixture). The
operation semantics are ``_engine/metadata_ops.py``'s; the stored document is compared as
parsed JSON, and its canonical text (sorted keys, UTF-8) must be the same in both stores.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from celery_trigger import _metadata_ops as metadata_ops
from celery_trigger._store.base import MetaResult, MetaUpdate, Store

from .contract import NOW, create

LIMIT = 262_144
HOUR = 3_600_000


def run_with(store: Store, run_id: str = "run_m", meta: Any = None, **fields: str) -> str:
    extra = {"created": str(NOW), **fields}
    if meta is not None:
        extra["meta"] = meta if isinstance(meta, str) else json.dumps(meta)
    create(store, run_id, fields=extra)
    return run_id


def apply(
    store: Store,
    ops: list[dict[str, Any]],
    run_id: str = "run_m",
    *,
    window_ms: int | None = None,
    now: int = NOW,
    limit: int = LIMIT,
) -> MetaResult:
    update = MetaUpdate(run_id, json.dumps(ops), window_ms=window_ms, reply=True)
    return store.apply_metadata([update], now, max_bytes=limit)[0]


def stored(store: Store, run_id: str = "run_m") -> Any:
    text = (store.get_run(run_id) or {}).get("meta")
    return json.loads(text) if text else None


def op(kind: str, key: str | None = None, value: Any = None) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind}
    if key is not None:
        out["key"] = key
    if kind != "delete":
        out["value"] = value
    return out


# operations ---------------------------------------------------------------------------
CASES = [
    # (check ids, initial document, operations, expected document)
    ("META-1 set", {}, [op("set", "progress", 0.5)], {"progress": 0.5}),
    ("META-3 append to missing", {}, [op("append", "logs", "a")], {"logs": ["a"]}),
    (
        "META-3 append twice",
        {},
        [op("append", "logs", "a"), op("append", "logs", "b")],
        {"logs": ["a", "b"]},
    ),
    ("META-3 append to scalar", {"logs": "x"}, [op("append", "logs", "a")], {"logs": ["x", "a"]}),
    ("META-3 append to null", {"logs": None}, [op("append", "logs", "a")], {"logs": [None, "a"]}),
    (
        "META-4 remove all equal",
        {"logs": ["a", "b", "a"]},
        [op("remove", "logs", "a")],
        {"logs": ["b"]},
    ),
    (
        "META-4 remove deep-equal",
        {"l": [{"x": [1]}, {"x": [2]}]},
        [op("remove", "l", {"x": [1]})],
        {"l": [{"x": [2]}]},
    ),
    ("META-4 remove leaves booleans", {"l": [1, True, 1.0]}, [op("remove", "l", 1)], {"l": [True]}),
    ("META-5 increment missing", {}, [op("increment", "n", 1)], {"n": 1}),
    ("META-5 increment float", {"n": 0.1}, [op("increment", "n", 0.4)], {"n": 0.5}),
    ("META-5 decrement", {"n": 5}, [op("increment", "n", -2)], {"n": 3}),
    (
        "META-5 increment non-number",
        {"n": "x", "b": True},
        [op("increment", "n", 2), op("increment", "b", 1)],
        {"n": 2, "b": 1},
    ),
    ("META-6 set path", {}, [op("set", "$.a.b", 1)], {"a": {"b": 1}}),
    ("META-6 set path over scalar", {"a": 3}, [op("set", "$.a.b", 1)], {"a": {"b": 1}}),
    (
        "META-6 increment path",
        {"p": {"done": 2}},
        [op("increment", "$.p.done", 3)],
        {"p": {"done": 5}},
    ),
    ("META-6 append path", {}, [op("append", "$.p.log", "x")], {"p": {"log": ["x"]}}),
    (
        "META-6 path into an array element",
        {"items": [{"done": False}, {"done": False}]},
        [op("set", "$.items.1.done", True)],
        {"items": [{"done": False}, {"done": True}]},
    ),
    ("META-7 replace", {"a": 1, "b": 2}, [op("update", None, {"x": 1})], {"x": 1}),
    ("§8.2 del", {"a": 1, "b": 2}, [op("delete", "a"), op("delete", "zz")], {"b": 2}),
    ("§8.2 set null", {"a": 1}, [op("set", "a", None)], {"a": None}),
    (
        "§8.2 order of operations",
        {},
        [
            op("set", "s", "a"),
            op("append", "s", "b"),
            op("update", None, {"k": []}),
            op("append", "k", 1),
        ],
        {"k": [1]},
    ),
]


@pytest.mark.parametrize(
    ("initial", "ops", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_operations_apply_to_the_stored_document(
    store: Store, initial: Any, ops: Any, expected: Any
) -> None:
    """META-1..7, §8.2: each operation's effect on the stored value."""
    # Given a run whose stored metadata is ``initial``
    run_with(store, meta=initial)
    # When the operations are applied
    result = apply(store, ops)
    # Then the stored document is the expected one, and the reply carries it
    assert result.status == "ok"
    assert stored(store) == expected and json.loads(result.document) == expected
    # And it is the same document the local copy computes
    assert metadata_ops.apply(json.loads(json.dumps(initial)), ops)[0] == expected


def test_empty_containers_unicode_and_numbers_survive_a_rewrite(store: Store) -> None:
    """§8.1: rewriting the document keeps [] and {} apart, UTF-8 text and exact numbers."""
    # Given a document with the shapes a JSON round trip through Lua could damage
    doc = {
        "empty_list": [],
        "empty_obj": {},
        "nested": {"l": [[], {}]},
        "text": 'é/中\n"q"',
        "ts_ms": 1_700_000_000_123,
        "big": 9_007_199_254_740_991,
        "f": 0.1,
        "e": 1e-7,
        "neg": -2.5,
        "t": True,
        "null": None,
        "arr": [1, "two", None, False],
    }
    run_with(store, meta=doc)
    # When an unrelated key is changed
    result = apply(store, [op("set", "x", 1)])
    # Then every other value is unchanged
    assert result.status == "ok"
    assert stored(store) == {**doc, "x": 1}
    # And the text is canonical: sorted keys, compact, UTF-8 (the same in both stores)
    assert result.document == metadata_ops.encode({**doc, "x": 1})


def test_operations_that_apply_to_nothing_write_nothing(store: Store) -> None:
    """META-4, §8.2: remove on a non-array and a path through a missing array index."""
    # Given a run with metadata
    run_with(store, meta={"s": "x", "items": [1]})
    before = store.get_run("run_m")
    # When only unapplicable operations are sent
    result = apply(
        store, [op("remove", "s", "x"), op("set", "$.items.5.a", 1), op("remove", "nope", 1)]
    )
    # Then the reply is ok and the record is untouched
    assert result.status == "ok"
    assert store.get_run("run_m") == before


def test_a_run_without_metadata_gets_a_document_on_first_write(store: Store) -> None:
    """§8.1: a run triggered without metadata starts from {}."""
    run_with(store)
    assert apply(store, [op("increment", "n", 1)]).status == "ok"
    assert stored(store) == {"n": 1}


# limits -------------------------------------------------------------------------------
def test_a_write_over_the_size_limit_is_refused_and_the_stored_value_kept(store: Store) -> None:
    """META-13, §8.3: the stored document keeps its previous value; at the limit it passes."""
    # Given a run with small metadata and a limit of 100 bytes
    run_with(store, meta={"a": 1})
    at_limit = {"k": "x" * (100 - len('{"k":""}'))}
    # When a document one byte over the limit is written, then one exactly at it
    over = apply(store, [op("update", None, {"k": "x" * (101 - len('{"k":""}'))})], limit=100)
    kept = stored(store)
    exact = apply(store, [op("update", None, at_limit)], limit=100)
    # Then the first is refused with nothing written, the second stored
    assert over.status == "too_large" and kept == {"a": 1}
    assert json.loads(over.document) == {"a": 1}
    assert exact.status == "ok" and stored(store) == at_limit


@pytest.mark.parametrize(
    ("status", "finished_ago", "outcome"),
    [
        ("EXECUTING", None, "ok"),
        ("COMPLETED", HOUR // 2, "ok"),
        ("FAILED", HOUR - 1, "ok"),
        ("COMPLETED", 2 * HOUR, "closed"),
        ("CANCELED", HOUR + 1, "closed"),
    ],
)
def test_writes_are_accepted_until_one_hour_after_the_run_finished(
    store: Store, status: str, finished_ago: int | None, outcome: str
) -> None:
    """META-12, §8.3: the updatable window; a running run is always writable."""
    # Given a run in ``status`` that finished ``finished_ago`` ms ago
    fields = {"status": status}
    if finished_ago is not None:
        fields["finished"] = str(NOW - finished_ago)
    run_with(store, meta={"a": 1}, **fields)
    # When an update with the one-hour window is applied
    result = apply(store, [op("set", "a", 2)], window_ms=HOUR)
    # Then it is accepted or refused, and a refused one writes nothing
    assert result.status == outcome
    assert stored(store) == ({"a": 2} if outcome == "ok" else {"a": 1})


def test_a_missing_run_and_unreadable_operations_are_reported(store: Store) -> None:
    """§8.3: nothing is created for an unknown run; bad operations write nothing."""
    run_with(store, meta={"a": 1})
    assert apply(store, [op("set", "a", 2)], run_id="run_nope").status == "missing"
    assert store.get_run("run_nope") is None
    for bad in (
        [{"type": "bogus", "key": "a"}],
        [op("update", None, [1])],
        [op("increment", "a", "1")],
        [{"type": "set", "value": 1}],
    ):
        assert apply(store, bad).status == "invalid"
    assert stored(store) == {"a": 1}


def test_several_targets_in_one_call_answer_in_order(store: Store) -> None:
    """§8.2 (parent/root): one call updates several runs; only asked-for replies carry text."""
    run_with(store, "run_a", meta={})
    run_with(store, "run_b", meta={"n": 1})
    results = store.apply_metadata(
        [
            MetaUpdate("run_a", json.dumps([op("set", "k", "v")]), reply=True),
            MetaUpdate("run_b", json.dumps([op("increment", "n", 1)])),
            MetaUpdate("run_x", json.dumps([op("increment", "n", 1)])),
        ],
        NOW,
        max_bytes=LIMIT,
    )
    assert results == [
        MetaResult("ok", '{"k":"v"}'),
        MetaResult("ok", ""),
        MetaResult("missing", ""),
    ]
    assert stored(store, "run_b") == {"n": 2}


def test_concurrent_increments_are_never_lost(store: Store) -> None:
    """META-8: 8 threads x 25 increments of one document give exactly 200."""
    # Given a run with a counter
    run_with(store, meta={"done": 0})
    barrier = threading.Barrier(8)

    def writer() -> None:
        barrier.wait()
        for _ in range(25):
            assert apply(store, [op("increment", "done", 1), op("append", "who", 1)]).status == "ok"

    # When 8 threads increment it concurrently
    threads = [threading.Thread(target=writer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    # Then every increment and append landed
    doc = stored(store)
    assert doc["done"] == 200 and len(doc["who"]) == 200


# tags ---------------------------------------------------------------------------------
def test_add_tags_skips_present_ones_and_indexes_new_ones_by_creation_time(store: Store) -> None:
    """TAG-1: dedup against the run's tags; the index scores by the run's creation time."""
    # Given a run with tags a, b created at NOW
    create(store, "run_t", fields={"created": str(NOW), "tags": '["a","b"]'}, tags=["a", "b"])
    # When b and c are added
    status, tags = store.add_tags("run_t", ["b", "c"], 10)
    # Then only c is new, stored after the others, and listed under its tag
    assert (status, tags) == ("ok", ["a", "b", "c"])
    assert json.loads(store.get_run("run_t")["tags"]) == ["a", "b", "c"]  # type: ignore[index]
    assert store.list_run_ids(index="c", before=None, count=5) == [("run_t", NOW)]


def test_add_tags_over_the_limit_adds_none(store: Store) -> None:
    """TAG-2: 9 tags + 2 new with a limit of 10: nothing is added or indexed."""
    nine = [f"t{i}" for i in range(9)]
    create(store, "run_t", fields={"created": str(NOW), "tags": json.dumps(nine)}, tags=nine)
    status, tags = store.add_tags("run_t", ["x", "y"], 10)
    assert (status, tags) == ("limit", nine)
    assert json.loads(store.get_run("run_t")["tags"]) == nine  # type: ignore[index]
    assert store.list_run_ids(index="x", before=None, count=5) == []
    # And a run that does not exist is reported
    assert store.add_tags("run_nope", ["x"], 10)[0] == "missing"


def test_add_tags_to_a_run_without_tags(store: Store) -> None:
    """TAG-1: a run triggered with no tags field gets its first ones."""
    create(store, "run_t", fields={"created": str(NOW)})
    assert store.add_tags("run_t", ["a/b", "é"], 10) == ("ok", ["a/b", "é"])
    assert json.loads(store.get_run("run_t")["tags"]) == ["a/b", "é"]  # type: ignore[index]
