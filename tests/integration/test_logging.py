"""The run logger and readable failures against real Redis and a real worker (SEMANTICS §14,
LOG-1…4; issue 13 items 1 and 6). Task ids start with ``lg-``.

Records are read back from the run's own log (``ct.runs.logs``) and from stdlib logging
through a real handler on the ``celery_trigger.run`` and ``celery.app.trace`` loggers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from celery.result import AsyncResult

import celery_trigger as ct

from .conftest import Engine, wait_for, wait_for_status


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def about(self, run_id: str) -> list[logging.LogRecord]:
        return [r for r in self.records if run_id in (getattr(r, "run_id", ""), *r.getMessage().split())  # noqa: E501
                or run_id in r.getMessage()]  # fmt: skip


@pytest.fixture
def records() -> Iterator[Collect]:
    handler = Collect()
    loggers = [logging.getLogger("celery_trigger.run"), logging.getLogger("celery.app.trace")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield handler
    for lg, level in zip(loggers, levels, strict=True):
        lg.removeHandler(handler)
        lg.setLevel(level)


@ct.task(id="lg-levels")
def levels(payload: Any) -> str:
    ct.logger.info("x", {"a": {"b": 1}, "items": [1, None]}, order=7)
    ct.logger.debug("y")
    ct.logger.warn("w")
    ct.logger.error("e")
    return "ok"


@ct.task(id="lg-many")
def many(payload: Any) -> int:
    ct.logger.info("wide", {f"k{i}": i for i in range(300)})
    return ct.logger.trace("t", lambda span: 42)


def _raise_in_trace(span: Any) -> None:
    raise KeyError("inside")


@ct.task(id="lg-trace-error")
def trace_error(payload: Any) -> str:
    try:
        ct.logger.trace("t", _raise_in_trace)
    except KeyError as exc:
        return f"propagated {exc}"
    return "swallowed"


_calls: dict[str, int] = {}


@ct.task(
    id="lg-flaky",
    retry={"max_attempts": 3, "min_timeout_in_ms": 1000, "factor": 1, "randomize": False},
)
def flaky(payload: Any, ctx: ct.Context) -> str:
    if ctx.attempt.number == 1:
        raise ConnectionError("upstream 503")
    return "fine"


@ct.task(id="lg-broken", retry={"max_attempts": 1})
def broken(payload: Any) -> None:
    raise ValueError("bad row 3")


def test_info_is_kept_with_flattened_attributes_and_debug_is_dropped(
    engine: Engine, records: Collect
) -> None:
    """LOG-1: default threshold info: ``info("x", {a: {b: 1}})`` gives body x and a.b = 1;
    debug is dropped; the record also reaches stdlib logging with the run in ``extra``."""
    with engine.worker():
        # When a run logs at every level
        handle = levels.trigger({}, tags=["t1"])
        wait_for_status(handle.id, "COMPLETED")
    # Then its own log holds info, warn and error, not debug, oldest first
    entries = ct.runs.logs(handle.id)
    assert [(e.level, e.message) for e in entries] == [("info", "x"), ("warn", "w"), ("error", "e")]
    first = entries[0]
    assert first.attributes["a.b"] == 1
    assert first.attributes["items.[0]"] == 1
    assert first.attributes["order"] == 7
    assert first.attempt == 1
    assert first.timestamp.tzinfo is not None
    # and stdlib logging got the same records with the run's identity
    std = [r for r in records.records if getattr(r, "run_id", None) == handle.id]
    assert [(r.levelno, r.getMessage()) for r in std] == [
        (logging.INFO, "x"),
        (logging.WARNING, "w"),
        (logging.ERROR, "e"),
    ]
    assert std[0].task_id == "lg-levels"  # type: ignore[attr-defined]
    assert std[0].tags == ("t1",)  # type: ignore[attr-defined]
    assert std[0].attempt == 1  # type: ignore[attr-defined]


def test_log_level_debug_keeps_debug_and_the_environment_wins(
    make_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LOG-2: ``log_level="debug"`` emits debug; ``TRIGGER_LOG_LEVEL=none`` beats the config
    and drops even error."""
    engine = make_engine(log_level="debug")
    with engine.worker():
        # Given log_level debug  When the run logs  Then debug is kept
        debug_run = levels.trigger({})
        wait_for_status(debug_run.id, "COMPLETED")
        assert [e.level for e in ct.runs.logs(debug_run.id)] == ["info", "debug", "warn", "error"]
        # Given TRIGGER_LOG_LEVEL=none  When the run logs  Then nothing is kept
        monkeypatch.setenv("TRIGGER_LOG_LEVEL", "none")
        silent = levels.trigger({})
        wait_for_status(silent.id, "COMPLETED")
    assert ct.runs.logs(silent.id) == []


def test_properties_are_capped_and_trace_returns_its_value(engine: Engine) -> None:
    """LOG-4: 300 properties give at most 256 attributes; LOG-3: ``trace`` returns fn's value
    (without OpenTelemetry installed the span is a no-op)."""
    with engine.worker():
        handle = many.trigger({})
        run = wait_for_status(handle.id, "COMPLETED")
    assert run.output == 42
    (entry,) = ct.runs.logs(handle.id)
    assert len(entry.attributes) == 256


def test_an_exception_in_trace_propagates(engine: Engine) -> None:
    """LOG-3: the exception raised inside ``trace`` propagates to the caller."""
    with engine.worker():
        handle = trace_error.trigger({})
        run = wait_for_status(handle.id, "COMPLETED")
    assert run.output == "propagated 'inside'"


def test_outside_a_run_the_logger_is_a_no_op_and_trace_still_calls() -> None:
    """§14.1: outside a run logger calls do nothing and ``trace`` still calls its function."""
    ct.logger.info("nowhere", {"a": 1})
    assert ct.logger.trace("t", lambda span: 5) == 5
    with ct.logger.trace("t") as span:
        span.set_attribute("k", 1)


def test_a_retried_attempt_is_logged_once_as_a_warning_and_its_error_is_kept(
    make_engine: Any, records: Collect
) -> None:
    """Issue 13 item 6: the failed attempt 1 is logged once at WARNING with the delay and the
    user's ConnectionError (traceback) as exc_info; after the retry through the queue the run
    is COMPLETED with ``error`` None and ``attempts[0].error`` kept."""
    # Given a warm-retry threshold below the retry delay (the retry goes through the queue)
    engine = make_engine(warm_retry_threshold=0.5)
    with engine.worker():
        handle = flaky.trigger({})
        run = wait_for_status(handle.id, "COMPLETED")
    warnings = [r for r in records.about(handle.id) if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    (warning,) = warnings
    assert warning.levelno == logging.WARNING
    assert "retrying in 1s" in warning.getMessage()
    assert warning.exc_info is not None and warning.exc_info[0] is ConnectionError
    assert "raise ConnectionError" in logging.Formatter().formatException(warning.exc_info)
    # Then the record keeps each attempt's error, and none for the run
    assert run.error is None
    assert [a.number for a in run.attempts] == [1, 2]
    assert run.attempts[0].error is not None
    assert run.attempts[0].error.name == "ConnectionError"
    assert run.attempts[0].error.message == "upstream 503"
    assert run.attempts[1].error is None
    # and the run's own log says so too
    assert [e.level for e in ct.runs.logs(handle.id)] == ["warn"]


def test_a_warm_retry_keeps_the_attempt_error_too(engine: Engine) -> None:
    """Issue 13 item 6: a warm retry (same worker, same lease) keeps attempt 1's error."""
    with engine.worker():
        handle = flaky.trigger({})
        run = wait_for_status(handle.id, "COMPLETED")
    assert run.error is None
    assert run.attempts[0].error is not None and run.attempts[0].error.name == "ConnectionError"


def test_a_final_failure_is_logged_once_with_the_users_exception(
    engine: Engine, records: Collect
) -> None:
    """Issue 13 item 6: the final failure is logged once at ERROR (by Celery) with the user's
    ValueError and its traceback, and the result backend holds that ValueError (a plain
    Celery send keeps its result)."""
    with engine.worker():
        sent = broken.celery_task.delay({})
        handle = AsyncResult(sent.id, app=engine.app)
        run = wait_for_status(sent.id, "FAILED")
        result = AsyncResult(sent.id, app=engine.app)
        wait_for(lambda: result.state == "FAILURE", timeout=10)
    errors = wait_for(
        lambda: [r for r in records.about(handle.id) if r.levelno >= logging.WARNING],
        timeout=5,
    )
    assert len(errors) == 1
    (error,) = errors
    assert error.levelno == logging.ERROR
    assert error.exc_info is not None and error.exc_info[0] is ValueError
    assert 'raise ValueError("bad row 3")' in logging.Formatter().formatException(error.exc_info)
    assert isinstance(result.result, ValueError)
    assert str(result.result) == "bad row 3"
    assert run.error is not None and run.error.name == "ValueError"
    assert run.attempts[0].error is not None
    assert [e.level for e in ct.runs.logs(handle.id)] == ["error"]


@ct.task(id="lg-slow")
def slow(payload: Any) -> str:
    ct.logger.info("first", {"n": 1})
    ct.wait.for_(seconds=0.2)
    ct.logger.warn("second")
    return "ok"


def test_log_records_arrive_on_a_realtime_subscription_as_log_parts(engine: Engine) -> None:
    """Issue 13 item 1: ``with_streams()`` yields each record of the run's own log as a
    ``StreamPart(type="$log")`` whose chunk is the entry as JSON."""
    with engine.worker():
        handle = slow.trigger({})
        parts = list(ct.runs.subscribe_to_run(handle.id).with_streams())
    logs = [p.chunk for p in parts if p.type == "$log"]
    assert [(e["level"], e["message"]) for e in logs] == [("info", "first"), ("warn", "second")]
    assert logs[0]["attributes"] == {"n": 1}
    assert parts[-1].type in ("run", "$log") and parts[-1].run.status == "COMPLETED"
