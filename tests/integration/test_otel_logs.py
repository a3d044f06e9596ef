"""``ct.logger`` records as OpenTelemetry logs (issue 13 item 1c), read with the SDK's
in-memory log exporter from runs on a real worker. Task ids start with ``ol-``.

The global logger provider can be set once per process: the first test sets an SDK
provider with an in-memory exporter, and each test clears the exporter.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import _logs
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

import celery_trigger as ct

from .conftest import Engine, wait_for_status

_EXPORTER = InMemoryLogRecordExporter()


@pytest.fixture
def exported() -> Iterator[InMemoryLogRecordExporter]:
    if not isinstance(_logs.get_logger_provider(), LoggerProvider):
        provider = LoggerProvider()
        provider.add_log_record_processor(SimpleLogRecordProcessor(_EXPORTER))
        _logs.set_logger_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def _records(exporter: InMemoryLogRecordExporter, run_id: str) -> list[Any]:
    rows = [getattr(d, "log_record", d) for d in exporter.get_finished_logs()]
    return [r for r in rows if (r.attributes or {}).get("ct.run_id") == run_id]


@ct.task(id="ol-logs")
def logs(payload: Any) -> str:
    ct.logger.info("importing", {"file": {"name": "a.csv"}, "rows": 3})
    ct.logger.debug("below the threshold")
    ct.logger.error("row 3 is bad", row=3)
    return "ok"


def test_run_records_go_to_the_configured_logger_provider(
    engine: Engine, exported: InMemoryLogRecordExporter
) -> None:
    """LOG-1 (c): each record within the threshold is an OpenTelemetry log record with its
    level, message, the run's attributes and the flattened properties; nothing outside."""
    # Given a configured SDK logger provider
    with engine.worker(concurrency=1):
        # When a run logs
        run = wait_for_status(logs.trigger({}, tags=["ol"]).id)
    ct.logger.info("outside a run")
    # Then its two records within the threshold are exported, in order
    records = _records(exported, run.id)
    assert [(r.severity_text, r.body) for r in records] == [
        ("INFO", "importing"), ("ERROR", "row 3 is bad")]  # fmt: skip
    assert [r.severity_number.value for r in records] == [9, 17]
    first = dict(records[0].attributes or {})
    assert first["file.name"] == "a.csv" and first["rows"] == 3
    assert first["ct.task_id"] == "ol-logs" and first["ct.attempt"] == 1
    assert tuple(first["ct.tags"]) == ("ol",)
    assert dict(records[1].attributes or {})["row"] == 3
    assert not any(
        getattr(d, "log_record", d).body == "outside a run" for d in exported.get_finished_logs()
    )


def test_a_logging_handler_on_the_path_ships_each_record_once(
    engine: Engine, exported: InMemoryLogRecordExporter
) -> None:
    """With OpenTelemetry's LoggingHandler already on the stdlib logger's path, a record is
    exported by the handler only, never twice."""
    # Given the SDK's LoggingHandler on the celery_trigger.run logger
    std = logging.getLogger("celery_trigger.run")
    with warnings.catch_warnings():  # the SDK's handler is deprecated, still common
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler()
    level = std.level
    std.addHandler(handler)
    std.setLevel(logging.INFO)
    try:
        with engine.worker(concurrency=1):
            # When a run logs
            run = wait_for_status(logs.trigger({}, tags=["ol"]).id)
    finally:
        std.removeHandler(handler)
        std.setLevel(level)
    # Then each record was exported once
    bodies = [getattr(d, "log_record", d).body for d in exported.get_finished_logs()]
    assert bodies.count("importing") == 1 and bodies.count("row 3 is bad") == 1, bodies
    assert run.output == "ok"
