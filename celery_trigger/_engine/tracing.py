"""OpenTelemetry, when it is installed: the current span's ids, child spans, attributes.

OpenTelemetry is an optional dependency (the ``otel`` extra). It is imported on first use
and only when it is installed, so a process without it pays one failed ``find_spec`` and
nothing else; every function here is then a no-op (``span`` still runs its body).
Invariants: nothing here raises because of OpenTelemetry's absence, and a span always ends.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

_UNLOADED: Any = object()
_trace_api: Any = _UNLOADED


def otel() -> Any | None:
    """The ``opentelemetry.trace`` module, or None when OpenTelemetry is not installed."""
    global _trace_api
    if _trace_api is _UNLOADED:
        # The optional dependency is imported lazily, once: no import cost without it.
        found = importlib.util.find_spec("opentelemetry") is not None
        _trace_api = importlib.import_module("opentelemetry.trace") if found else None
    return _trace_api


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
    with tracer.start_as_current_span(name, attributes=dict(attributes or {})) as current:
        yield current
