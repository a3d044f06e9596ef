"""OpenTelemetry, when it is installed: the current span's ids, child spans, attributes,
and a run's trace context kept across its deliveries.

OpenTelemetry is an optional dependency (the ``otel`` extra). It is imported on first use
and only when it is installed, so a process without it pays one failed ``find_spec`` and
nothing else; every function here is then a no-op (``span`` still runs its body).
Invariants: nothing here raises because of OpenTelemetry's absence, and a span always ends.

A run keeps one trace: its record's ``trace`` field holds a W3C ``traceparent`` (the
trigger's span, or the first attempt's span when the trigger was not traced), and every
later delivery (resume, long retry, promotion, a delayed run coming due) is published
under it (``restored``), so the resumed attempt's spans join the same trace.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

_UNLOADED: Any = object()
_trace_api: Any = _UNLOADED
_context_api: Any = None
#: The record field holding a run's ``traceparent``.
TRACE_FIELD = "trace"


def otel() -> Any | None:
    """The ``opentelemetry.trace`` module, or None when OpenTelemetry is not installed."""
    global _trace_api
    if _trace_api is _UNLOADED:
        # The optional dependency is imported lazily, once: no import cost without it.
        found = importlib.util.find_spec("opentelemetry") is not None
        _trace_api = importlib.import_module("opentelemetry.trace") if found else None
    return _trace_api


def _context() -> Any:
    """``opentelemetry.context`` (only called once ``otel()`` found OpenTelemetry)."""
    global _context_api
    if _context_api is None:
        _context_api = importlib.import_module("opentelemetry.context")
    return _context_api


def traceparent() -> str | None:
    """The current span's context as a W3C ``traceparent``, or None (no valid span)."""
    api = otel()
    if api is None:
        return None
    ctx = api.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def kept_fields(record: Mapping[str, str]) -> dict[str, str]:
    """``{"trace": traceparent}`` to store on a run that has none yet, else ``{}``."""
    if record.get(TRACE_FIELD):
        return {}
    parent = traceparent()
    return {TRACE_FIELD: parent} if parent else {}


def _parse(value: str) -> Any | None:
    api = otel()
    parts = value.split("-")
    if api is None or len(parts) != 4:
        return None
    try:
        trace_id, span_id, flags = int(parts[1], 16), int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None
    ctx = api.SpanContext(trace_id, span_id, is_remote=True, trace_flags=api.TraceFlags(flags))
    return ctx if ctx.is_valid else None


@contextmanager
def restored(value: str | None) -> Iterator[None]:
    """Run the body with a run's saved ``traceparent`` as the current span context (its
    deliveries are published in the run's own trace); a no-op without one."""
    remote = _parse(value) if value else None
    if remote is None:
        yield
        return
    api: Any = otel()
    context = _context()
    token = context.attach(api.set_span_in_context(api.NonRecordingSpan(remote)))
    try:
        yield
    finally:
        context.detach(token)


def current_ids() -> tuple[str | None, str | None]:
    """(span id, trace id) of the current recording span as hex, else (None, None)."""
    api = otel()
    if api is None:
        return None, None
    context = api.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.span_id, "016x"), format(context.trace_id, "032x")


def set_attributes(attributes: Mapping[str, Any]) -> None:
    """Set ``attributes`` on the current span (Celery's ``run/<task>`` span in a worker)."""
    api = otel()
    if api is None:
        return
    span = api.get_current_span()
    if span.is_recording():
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})


class NoSpan:
    """What ``span`` yields without OpenTelemetry: accepts and ignores span calls."""

    def set_attribute(self, key: str, value: Any) -> None:
        """Ignored."""

    def set_attributes(self, attributes: Mapping[str, Any]) -> None:
        """Ignored."""

    def add_event(self, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """Ignored."""

    def record_exception(self, exception: BaseException) -> None:
        """Ignored."""


@contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """A child span of the current one named ``name`` (an exception is recorded on it,
    marks it errored and propagates); a ``NoSpan`` without OpenTelemetry."""
    api = otel()
    if api is None:
        yield NoSpan()
        return
    tracer = api.get_tracer("celery_trigger")
    with tracer.start_as_current_span(name, attributes=_clean(attributes)) as current:
        yield current


@contextmanager
def root_span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """Like ``span`` but the first span of a new trace (a schedule's fire)."""
    api = otel()
    if api is None:
        yield NoSpan()
        return
    tracer = api.get_tracer("celery_trigger")
    with tracer.start_as_current_span(
        name, context=_context().Context(), attributes=_clean(attributes)
    ) as current:
        yield current


def _clean(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (attributes or {}).items() if v is not None}


def trigger_span(prepared: Sequence[Any]) -> tuple[str, dict[str, Any]]:
    """Name and attributes of the span of a trigger of ``prepared`` runs (each has
    ``.new.fields``): ``trigger <task>``, or ``batch_trigger <task>`` for a batch."""
    fields = [item.new.fields for item in prepared]
    tasks = ",".join(dict.fromkeys(f.get("task", "") for f in fields))
    batch = fields[0].get("batch") if fields else None
    attributes: dict[str, Any] = {"ct.task_id": tasks, "ct.batch_id": batch}
    if len(fields) == 1:
        attributes["ct.parent_run_id"] = fields[0].get("parent")
        attributes["ct.schedule_id"] = fields[0].get("schedule")
        attributes["ct.idempotency_key"] = fields[0].get("idem")
    else:
        attributes["ct.batch.size"] = len(fields)
    return ("batch_trigger " if batch else "trigger ") + tasks, attributes
