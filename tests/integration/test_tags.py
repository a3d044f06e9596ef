"""Tags added inside runs, the tag index and listing by tag (SEMANTICS §9, TAG-1..5, D-14).

Trigger-time tag rules (TRIG-14/15) are in ``test_trigger.py``; the all-of realtime filter of
TAG-4 belongs to the realtime suite.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

import celery_trigger as ct

from .conftest import Engine, wait_for_status


@ct.task(id="tag-adder")
def tag_adder(payload: dict[str, Any], ctx: ct.Context) -> dict[str, Any]:
    for tags in payload["add"]:
        ct.tags.add(tags)
    return {"ctx_tags": list(ctx.run.tags)}


def test_add_deduplicates_and_leaves_ctx_tags_unchanged(engine: Engine) -> None:
    """TAG-1: ``["a","b"]`` then ``tags.add(["b","c"])`` → stored ``["a","b","c"]``;
    ``ctx.run.tags`` stays ``["a","b"]``."""
    with engine.worker():
        handle = tag_adder.trigger({"add": [["b", "c"], "c"]}, tags=["a", "b"])
        run = wait_for_status(handle.id)
    assert run.tags == ["a", "b", "c"]
    assert run.output == {"ctx_tags": ["a", "b"]}


def test_adding_past_ten_tags_adds_none_and_logs(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """TAG-2: a run with 9 tags calling ``tags.add(["x","y"])`` keeps 9, does not throw, and
    an error is logged; a later add that fits still works."""
    caplog.set_level(logging.ERROR, logger="celery_trigger")
    nine = [f"t{i}" for i in range(9)]
    with engine.worker():
        handle = tag_adder.trigger({"add": [["x", "y"], "t0", "z"]}, tags=nine)
        run = wait_for_status(handle.id)
    assert run.status is ct.RunStatus.COMPLETED
    assert run.tags == [*nine, "z"]
    assert any(
        "cannot have more than 10 tags" in r.getMessage() and handle.id in r.getMessage()
        for r in caplog.records
    )
    assert not ct.runs.list(tag="x").data


def test_blank_tags_change_nothing(engine: Engine) -> None:
    """TAG-3, D-14: ``tags.add("")`` and ``tags.add("   ")`` are no-ops."""
    with engine.worker():
        run = wait_for_status(tag_adder.trigger({"add": ["", "   ", ["", " "]]}, tags=["a"]).id)
    assert run.status is ct.RunStatus.COMPLETED and run.tags == ["a"]


def test_list_by_tags_is_any_of_and_finds_tags_added_in_runs(engine: Engine) -> None:
    """TAG-4 (runs.list), RUNS-4: ``runs.list(tag=["a","z"])`` returns runs tagged a or z,
    newest first, including a tag added by ``tags.add``."""
    with engine.worker():
        tagged_a = wait_for_status(tag_adder.trigger({"add": []}, tags=["a"]).id)
        added_z = wait_for_status(tag_adder.trigger({"add": ["z"]}, tags=["m"]).id)
        both = wait_for_status(tag_adder.trigger({"add": ["z"]}, tags=["a"]).id)
        other = wait_for_status(tag_adder.trigger({"add": ["q"]}).id)
    assert [r.id for r in ct.runs.list(tag=["a", "z"])] == [both.id, added_z.id, tagged_a.id]
    assert [r.id for r in ct.runs.list(tag="z")] == [both.id, added_z.id]
    assert [r.id for r in ct.runs.list(tag="q")] == [other.id]


def test_add_outside_a_run_raises(engine: Engine) -> None:
    """TAG-5, SEMANTICS §17.2: ``tags.add`` from backend code raises."""
    with pytest.raises(RuntimeError, match="Can't set tags outside of a run"):
        ct.tags.add("x")


@pytest.mark.parametrize(
    ("tags", "error"),
    [
        ("x" * 65, ValueError),
        ([f"t{i}" for i in range(11)], ValueError),
        ([1], TypeError),
        ({"a"}, TypeError),
    ],
)
def test_bad_tags_raise_at_the_call(engine: Engine, tags: Any, error: type) -> None:
    """D-14, issue 5: too long, too many in one call, or not strings: a typed error at once,
    before the run context is even looked at."""
    with pytest.raises(error):
        ct.tags.add(tags)


@ct.task(id="tag-bad-in-run")
def tag_bad_in_run(payload: Any) -> str:
    try:
        ct.tags.add("y" * 65)
    except ValueError as exc:
        return str(exc)
    return "accepted"


def test_bad_tag_in_a_run_raises_and_adds_nothing(engine: Engine) -> None:
    """D-14: a 65-character tag raises inside the run too; the run's tags are unchanged."""
    with engine.worker():
        run = wait_for_status(tag_bad_in_run.trigger(None, tags=["a"]).id)
    assert "limit is 64" in run.output and run.tags == ["a"]


@ct.task(id="tag-child")
def tag_child(payload: Any, ctx: ct.Context) -> list[str]:
    return list(ctx.run.tags)


@ct.task(id="tag-parent")
def tag_parent(payload: Any) -> list[str]:
    ct.tags.add("added-by-parent")
    return tag_child.trigger_and_wait(None).unwrap()


def test_tags_are_not_inherited_and_replay_keeps_them(engine: Engine) -> None:
    """TRIG-15, §9.1, RUNS-8: a child of a tagged parent (trigger-time and added tags) has no
    tags; a replay of the parent carries the parent's tags."""
    with engine.worker():
        parent = wait_for_status(tag_parent.trigger(None, tags=["p"]).id, timeout=20)
        replayed = ct.runs.replay(parent.id)
        replay_run = wait_for_status(replayed.id, timeout=20)
    child = ct.runs.retrieve(parent.children[0])
    assert parent.output == [] and child.tags == []
    assert parent.tags == ["p", "added-by-parent"]
    assert replay_run.tags == ["p", "added-by-parent"]
