"""The run logger (SEMANTICS §14, ``ct.logger``): structured records attached to the run.

Inside a run, a record within the threshold (``TRIGGER_LOG_LEVEL`` > ``log_level`` >
``"info"``) goes to stdlib logging (logger ``celery_trigger.run``, run id, task, attempt and
tags in ``extra``) and to the run's own log (``ct.runs.logs(run_id)``, realtime ``log``
events); ``properties`` and keyword attributes are flattened to dotted attributes. Outside a
run every call is a no-op, except that ``trace`` still runs its function. Example::

    ct.logger.info("charged", {"order": {"id": 7}})     # attribute order.id = 7
    total = ct.logger.trace("sum", lambda span: sum(rows))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar, overload

from ._engine import runlog, tracing
from ._engine import usage as _usage

T = TypeVar("T")


@dataclass(frozen=True)
class LogEntry:
    """One record of a run's own log (``runs.logs``); ``level`` is debug, info, warn or
    error, ``attributes`` the flattened properties."""

    timestamp: datetime
    level: str
    message: str
    attributes: dict[str, Any] = field(default_factory=dict)
    attempt: int = 0
    span_id: str | None = None
    trace_id: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LogEntry:
        return cls(
            timestamp=datetime.fromtimestamp(int(data.get("timestamp") or 0) / 1000, timezone.utc),
            level=str(data.get("level") or "info"),
            message=str(data.get("message") or ""),
            attributes=dict(data.get("attributes") or {}),
            attempt=int(data.get("attempt") or 0),
            span_id=data.get("span_id"),
            trace_id=data.get("trace_id"),
        )

    def to_json(self) -> dict[str, Any]:
        """The entry as JSON (the realtime ``log`` event, the CLI's ``--json``)."""
        return {
            "timestamp": self.timestamp.isoformat(),
            "level": self.level,
            "message": self.message,
            "attributes": self.attributes,
            "attempt": self.attempt,
            "span_id": self.span_id,
            "trace_id": self.trace_id,
        }


def dropped_marker(count: int, first: LogEntry | None) -> LogEntry:
    """The entry that stands for ``count`` older entries the per-run caps dropped."""
    stamp = first.timestamp if first is not None else datetime.now(timezone.utc)
    return LogEntry(
        stamp,
        "warn",
        f"{count} earlier log entries of this run were dropped (per-run log limit)",
        {"ct.dropped": count},
    )


def debug(message: str, properties: Mapping[str, Any] | None = None, **attributes: Any) -> None:
    """A DEBUG record (dropped under the default ``info`` threshold)."""
    runlog.emit("debug", message, properties, attributes)


def log(message: str, properties: Mapping[str, Any] | None = None, **attributes: Any) -> None:
    """An INFO record (``log`` counts as ``info``)."""
    runlog.emit("log", message, properties, attributes)


def info(message: str, properties: Mapping[str, Any] | None = None, **attributes: Any) -> None:
    """An INFO record. Example: ``ct.logger.info("done", {"rows": 3})``."""
    runlog.emit("info", message, properties, attributes)


def warn(message: str, properties: Mapping[str, Any] | None = None, **attributes: Any) -> None:
    """A WARN record."""
    runlog.emit("warn", message, properties, attributes)


def error(message: str, properties: Mapping[str, Any] | None = None, **attributes: Any) -> None:
    """An ERROR record."""
    runlog.emit("error", message, properties, attributes)


@contextmanager
def _span(name: str, attributes: Mapping[str, Any] | None) -> Iterator[Any]:
    start_ms, rate = _usage.attempt_ms()
    with tracing.span(name, runlog.flatten(dict(attributes or {}))) as span:
        try:
            yield span
        finally:
            end_ms, _ = _usage.attempt_ms()
            spent = max(0.0, end_ms - start_ms)
            span.set_attributes(
                {"ct.usage.duration_ms": int(spent), "ct.usage.cost_in_cents": spent * rate}
            )


@overload
def trace(name: str, fn: None = None, *, attributes: Mapping[str, Any] | None = None) -> Any: ...
@overload
def trace(
    name: str, fn: Callable[[Any], T], *, attributes: Mapping[str, Any] | None = None
) -> T: ...
def trace(
    name: str, fn: Callable[[Any], T] | None = None, *, attributes: Mapping[str, Any] | None = None
) -> Any:
    """A child span named ``name`` of the current span, with usage attributes. With ``fn``,
    returns ``fn(span)`` (an exception is recorded on the span and re-raised); without it, a
    context manager yielding the span. Example: ``ct.logger.trace("load", lambda s: load())``.
    """
    if fn is None:
        return _span(name, attributes)
    with _span(name, attributes) as span:
        return fn(span)


__all__ = ["LogEntry", "debug", "error", "info", "log", "trace", "warn"]
