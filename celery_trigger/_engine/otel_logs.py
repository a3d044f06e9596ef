"""The run's log records as OpenTelemetry logs, when a logger provider is configured.

OpenTelemetry is an optional dependency (the ``otel`` extra): ``opentelemetry._logs`` is
imported on first use and only when it is installed. A record is emitted when the global
logger provider is a real one (``set_logger_provider`` was called, e.g. with the SDK's
``LoggerProvider``), not the API's proxy or no-op default, and when no OpenTelemetry
``LoggingHandler`` on the stdlib logger's path already ships the same record (so a record is
never exported twice).

Invariants: nothing here raises because of OpenTelemetry's absence or an exporter's
failure; a record carries the current span's context (the SDK reads it from the context).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import time
from collections.abc import Mapping
from typing import Any

_UNLOADED: Any = object()
_logs_api: Any = _UNLOADED
#: The instrumentation scope of the emitted records.
SCOPE = "celery_trigger.run"
#: stdlib level -> (OpenTelemetry severity number, severity text).
_SEVERITY = {10: (5, "DEBUG"), 20: (9, "INFO"), 30: (13, "WARN"), 40: (17, "ERROR")}

_internal = logging.getLogger("celery_trigger")


def _api() -> Any | None:
    """``opentelemetry._logs``, or None when OpenTelemetry is not installed."""
    global _logs_api
    if _logs_api is _UNLOADED:
        # The optional dependency is imported lazily, once: no import cost without it.
        found = importlib.util.find_spec("opentelemetry") is not None
        _logs_api = importlib.import_module("opentelemetry._logs") if found else None
    return _logs_api


def _configured_provider(api: Any) -> Any | None:
    provider = api.get_logger_provider()
    # The API's own providers (the proxy before set_logger_provider, the no-op) drop records.
    return None if type(provider).__module__.startswith("opentelemetry._logs") else provider


def _handler_ships(std_logger: logging.Logger, level: int) -> bool:
    """Whether an OpenTelemetry handler on ``std_logger``'s path gets a ``level`` record."""
    if not std_logger.isEnabledFor(level):
        return False
    node: logging.Logger | None = std_logger
    while node is not None:
        for handler in node.handlers:
            if type(handler).__module__.startswith("opentelemetry") and handler.level <= level:
                return True
        node = node.parent if node.propagate else None
    return False


def run_attributes(
    run_id: str, task_id: str, attempt: int, tags: tuple[str, ...]
) -> dict[str, Any]:
    """The attributes every record of an attempt carries (named like its span's)."""
    return {"ct.run_id": run_id, "ct.task_id": task_id, "ct.attempt": attempt, "ct.tags": tags}


def emit(
    std_logger: logging.Logger, level: int, message: str, attributes: Mapping[str, Any]
) -> None:
    """Emit one run-log record (stdlib ``level``) to the configured logger provider."""
    api = _api()
    if api is None:
        return
    provider = _configured_provider(api)
    if provider is None or _handler_ships(std_logger, level):
        return
    number, text = _SEVERITY[level]
    try:
        provider.get_logger(SCOPE).emit(
            api.LogRecord(
                timestamp=time.time_ns(),
                severity_number=api.SeverityNumber(number),
                severity_text=text,
                body=message,
                attributes=dict(attributes),
            )
        )
    except Exception:  # an exporter's failure never fails the run
        _internal.debug("celery-trigger: OpenTelemetry log record not emitted", exc_info=True)
