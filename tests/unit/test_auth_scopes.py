"""Scopes of public access tokens (SEMANTICS §12.2): flattening scope objects, parsing scope
strings, the expiration grammar and the scope check behind ``auth.verify`` (RT-5, RT-7).
Pure functions: no Redis, no worker, no signing.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from celery_trigger import Run, RunStatus
from celery_trigger.auth import _expires_at, flatten_scopes, parse_scope, permits


def _run(**changes: Any) -> Run:
    """A Run with every required field filled; ``changes`` override."""
    base: dict[str, Any] = {
        f.name: None
        for f in dataclasses.fields(Run)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    base.update(
        id="run_a",
        status=RunStatus.QUEUED,
        task_identifier="send-email",
        tags=[],
        attempt_count=0,
        duration_ms=0,
        cost_in_cents=0.0,
        base_cost_in_cents=0.0,
        depth=0,
        is_test=False,
        is_replay=False,
    )
    base.update(changes)
    return Run(**base)


# flattening ---------------------------------------------------------------------------------


def test_scope_object_flattens_to_strings_in_order() -> None:
    """§12.2: string → one id, list → one scope each, True → the whole type; deduplicated."""
    scopes = {
        "read": {"runs": ["run_1", "run_2", "run_1"], "tags": "user:42", "batch": True},
        "write": {"waitpoints": "waitpoint_x"},
        "trigger": {"tasks": ["a", "b"]},
        "batchTrigger": {"tasks": True},
    }
    assert flatten_scopes(scopes) == [
        "read:runs:run_1",
        "read:runs:run_2",
        "read:tags:user:42",
        "read:batch",
        "write:waitpoints:waitpoint_x",
        "trigger:tasks:a",
        "trigger:tasks:b",
        "batchTrigger:tasks",
    ]


def test_none_false_and_empty_lists_grant_nothing() -> None:
    """A token without scopes is allowed to exist; it can do nothing."""
    assert flatten_scopes({"read": {"runs": None, "tags": False, "batch": []}}) == []
    assert flatten_scopes({"read": None}) == []
    assert flatten_scopes({}) == []
    assert flatten_scopes([]) == []


def test_scope_strings_are_validated_and_kept() -> None:
    strings = ["read:runs", "read:tags:a:b", "write:waitpoints:w1", "read:runs"]
    assert flatten_scopes(strings) == ["read:runs", "read:tags:a:b", "write:waitpoints:w1"]
    assert flatten_scopes(("trigger:tasks:t",)) == ["trigger:tasks:t"]


@pytest.mark.parametrize(
    ("scopes", "error", "match"),
    [
        ({"admin": {"runs": True}}, ValueError, "unknown action 'admin'"),
        ({"read": {"deployments": True}}, ValueError, "unknown resource 'deployments'"),
        ({"trigger": {"runs": True}}, ValueError, "unknown resource 'runs' for 'trigger'"),
        ({"read": {"runs": ""}}, ValueError, "empty id"),
        ({"read": {"runs": ["ok", "  "]}}, ValueError, "empty id"),
        ({"read": {"runs": 5}}, TypeError, "must be True, an id string or a list"),
        ({"read": {"runs": [1]}}, TypeError, "ids must be strings"),
        ({"read": {"runs": {"run_1": True}}}, TypeError, "must be True"),
        ({"read": ["runs"]}, TypeError, "must be a mapping"),
        ("read:runs:run_1", TypeError, "not str"),
        (42, TypeError, "not int"),
        (["read"], ValueError, "is not 'action:resource"),
        (["read:nothing:x"], ValueError, "unknown resource 'nothing'"),
        (["read:runs:"], ValueError, "empty id"),
        ([b"read:runs"], TypeError, "scope must be a string"),
    ],
)
def test_bad_scopes_raise_clear_errors(scopes: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        flatten_scopes(scopes)


def test_parse_scope_keeps_colons_in_the_id() -> None:
    assert parse_scope("read:tags:org:7:user") == ("read", "tags", "org:7:user")
    assert parse_scope("read:runs") == ("read", "runs", None)


# expiration ---------------------------------------------------------------------------------


def test_expiration_spans_datetimes_and_unix_times() -> None:
    """§12.2: a span string, an aware datetime or an absolute Unix time in seconds."""
    now = time.time()
    assert abs(_expires_at("15m") - (now + 900)) <= 2
    assert abs(_expires_at("1hr") - (now + 3600)) <= 2
    assert abs(_expires_at(timedelta(days=2)) - (now + 172_800)) <= 2
    at = datetime.now(timezone.utc) + timedelta(minutes=5)
    assert _expires_at(at) == int(at.timestamp())
    assert _expires_at(int(now) + 60) == int(now) + 60
    assert _expires_at(now + 60.7) == int(now + 60.7)


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        (900, ValueError, "absolute Unix time"),
        (time.time() - 10, ValueError, "not in the future"),
        ("0s", ValueError, "not in the future"),
        ("soon", ValueError, "expiration_time"),
        (datetime(2999, 1, 1), ValueError, "timezone-aware"),
        (datetime(2000, 1, 1, tzinfo=timezone.utc), ValueError, "not in the future"),
        (True, TypeError, "expiration_time"),
        (None, TypeError, "not NoneType"),
        (float("nan"), ValueError, "finite"),
    ],
)
def test_bad_expirations_raise(value: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        _expires_at(value)


# permits ------------------------------------------------------------------------------------


def _claims(*scopes: str) -> dict[str, Any]:
    return {"scopes": list(scopes)}


def test_run_scope_covers_only_that_run() -> None:
    """RT-5: ``read:runs:run_1`` reads run_1, not run_2; ``read:runs`` reads every run."""
    claims = _claims("read:runs:run_1")
    assert permits(claims, action="read", resource="runs:run_1")
    assert permits(claims, action="read", resource=_run(id="run_1"))
    assert not permits(claims, action="read", resource="runs:run_2")
    assert not permits(claims, action="read", resource=_run(id="run_2"))
    assert not permits(claims, action="read", resource="runs")
    everything = _claims("read:runs")
    assert permits(everything, action="read", resource="runs:anything")
    assert permits(everything, action="read", resource="runs")


def test_run_object_is_covered_by_tag_batch_or_task_scopes() -> None:
    """RT-7: a tag scope covers runs carrying that tag; a batch scope the runs of the batch."""
    tagged = _run(id="run_t", tags=["x", "t"])
    untagged = _run(id="run_u", tags=[])
    in_batch = _run(id="run_b", batch_id="batch_x")
    assert permits(_claims("read:tags:t"), action="read", resource=tagged)
    assert not permits(_claims("read:tags:t"), action="read", resource=untagged)
    assert permits(_claims("read:tags"), action="read", resource=tagged)  # every tag...
    assert not permits(_claims("read:tags"), action="read", resource=untagged)  # ...not none
    assert not permits(_claims("read:batch"), action="read", resource=untagged)
    assert permits(_claims("read:batch:batch_x"), action="read", resource=in_batch)
    assert not permits(_claims("read:batch:batch_x"), action="read", resource=tagged)
    assert permits(_claims("read:tasks:send-email"), action="read", resource=tagged)
    # string resources match only their own type
    assert not permits(_claims("read:tags:t"), action="read", resource="runs:run_t")


def test_write_does_not_imply_read_and_actions_are_separate() -> None:
    """§12.2 (as upstream): scopes grant exactly their action."""
    assert not permits(_claims("write:runs:r"), action="read", resource="runs:r")
    assert not permits(_claims("read:waitpoints:w"), action="write", resource="waitpoints:w")
    assert not permits(_claims("batchTrigger:tasks:t"), action="trigger", resource="tasks:t")
    assert permits(_claims("trigger:tasks:t"), action="trigger", resource="tasks:t")


def test_no_scopes_permit_nothing() -> None:
    nothing: list[dict[str, Any]] = [{"scopes": []}, {}]
    for claims in nothing:
        assert not permits(claims, action="read", resource="runs")
        assert not permits(claims, action="read", resource=_run())


@pytest.mark.parametrize(
    ("action", "resource", "error"),
    [
        ("delete", "runs:r", ValueError),
        ("read", "bogus:r", ValueError),
        ("read", "runs:", ValueError),
        ("read", 42, TypeError),
    ],
)
def test_bad_requests_are_caller_errors(action: str, resource: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        permits(_claims("read:runs"), action=action, resource=resource)
