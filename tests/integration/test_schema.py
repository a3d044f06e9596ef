"""``schema_task``: payload validation at trigger time and again before each attempt (§2)."""

from __future__ import annotations

import threading
from typing import Any

import pydantic
import pytest

import celery_trigger as ct
from tests.helpers import redis_client

from .conftest import Engine, wait_for_status

_lock = threading.Lock()
calls: dict[str, list[str]] = {}


def _record(run_id: str, what: str) -> None:
    with _lock:
        calls.setdefault(run_id, []).append(what)


class Person(pydantic.BaseModel):
    name: str = "John"
    age: int


def _on_failure(payload: Any, *, ctx: ct.Context, **_: Any) -> None:
    _record(ctx.run.id, "on_failure")


def _catch_error(payload: Any, *, ctx: ct.Context, **_: Any) -> None:
    _record(ctx.run.id, "catch_error")


@ct.schema_task(
    id="sch-person",
    schema=Person,
    retry={"max_attempts": 5, "min_timeout_in_ms": 50, "randomize": False},
    on_failure=_on_failure,
    catch_error=_catch_error,
)
def sch_person(person: Person, ctx: ct.Context) -> dict[str, Any]:
    _record(ctx.run.id, "run")
    return {"type": type(person).__name__, "name": person.name, "age": person.age}


def _nothing_written(engine: Engine) -> None:
    client = redis_client(engine.store)
    assert list(ct.runs.list()) == []
    assert client.zcard(engine.store.keys.by_created()) == 0
    assert list(client.scan_iter(f"{engine.prefix}:run:*")) == []
    assert client.llen(engine.queue) == 0


def test_invalid_payload_is_rejected_at_trigger_and_creates_no_run(engine: Engine) -> None:
    """SCHEMA-1: the task object validates before writing; the pydantic error is the cause."""
    # Given a schema task whose schema needs an integer age
    # When it is triggered with a payload that does not parse
    with pytest.raises(ct.PayloadValidationError) as info:
        sch_person.trigger({"age": "oops"})
    # Then the error carries the pydantic ValidationError and nothing was written
    assert isinstance(info.value.cause, pydantic.ValidationError)
    assert "age" in str(info.value)
    _nothing_written(engine)


def test_trigger_by_id_skips_client_validation_and_the_run_fails_input_error(
    engine: Engine,
) -> None:
    """SCHEMA-2: by id there is no client check; the run fails TASK_INPUT_ERROR, 1 attempt,
    no hooks, even with retry.max_attempts 5."""
    # Given a worker
    with engine.worker():
        # When the schema task is triggered by id with a bad payload
        handle = ct.tasks.trigger("sch-person", {"age": "oops"})
        # Then a run exists and ends FAILED after exactly one attempt
        run = wait_for_status(handle.id)
    assert run.status is ct.RunStatus.FAILED
    assert run.attempt_count == 1
    assert run.error is not None and run.error.name == "TASK_INPUT_ERROR"
    assert run.error.message.startswith(
        "TaskPayloadParsedError: Parsing payload with schema failed:"
    )
    # And neither the run function nor any hook was called
    assert calls.get(handle.id, []) == []


def test_parser_output_with_defaults_is_stored_and_passed_to_run(engine: Engine) -> None:
    """SCHEMA-3, §2.2: the stored payload is the parser's output (defaults filled) and
    the run function receives the parsed model."""
    # Given a worker
    with engine.worker():
        # When the task is triggered without the defaulted field
        handle = sch_person.trigger({"age": "42"})
        run = wait_for_status(handle.id)
    # Then the stored payload has the default and the coerced value
    assert run.payload == {"name": "John", "age": 42}
    # And the run function got a Person instance
    assert run.status is ct.RunStatus.COMPLETED
    assert run.output == {"type": "Person", "name": "John", "age": 42}


def test_batch_with_one_invalid_item_creates_no_batch_and_no_run(engine: Engine) -> None:
    """SCHEMA-4: every item is parsed first; one bad item rejects the whole batch."""
    # Given three items of which the second is invalid
    items = [{"payload": {"age": 1}}, {"payload": {"age": "x"}}, {"payload": {"age": 3}}]
    # When the batch is triggered
    with pytest.raises(ct.BatchTriggerError) as info:
        sch_person.batch_trigger(items)
    # Then the error names the item and wraps the validation error; nothing was written
    assert info.value.phase == "create"
    assert "item 1" in str(info.value)
    assert isinstance(info.value.cause, ct.PayloadValidationError)
    assert list(redis_client(engine.store).scan_iter(f"{engine.prefix}:batch:*")) == []
    _nothing_written(engine)


def test_batch_by_task_validates_and_batch_by_id_does_not(engine: Engine) -> None:
    """§2.2: ``batch.trigger_by_task`` validates on the client, ``batch.trigger`` by id not."""
    # When a bad payload goes through trigger_by_task
    with pytest.raises(ct.BatchTriggerError):
        ct.batch.trigger_by_task([{"task": sch_person, "payload": {"age": "x"}}])
    _nothing_written(engine)
    # When the same payload goes through batch.trigger by id
    handle = ct.batch.trigger([{"id": "sch-person", "payload": {"age": "x"}}])
    # Then the run is created with the raw payload
    assert ct.runs.retrieve(handle.runs[0]).payload == {"age": "x"}
