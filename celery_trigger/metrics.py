"""celery-trigger's gauges as OpenTelemetry metrics (``opentelemetry-api`` needed).

``instrument()`` registers observable gauges on a meter; the SDK's reader (a Prometheus or
OTLP exporter) calls them at each collection, and each call reads the store:

- ``celery_trigger.queue.running`` / ``celery_trigger.queue.queued`` (attribute ``queue``):
  runs holding a concurrency slot of the queue / waiting for one (limited queues);
- ``celery_trigger.queue.key_queued`` (attributes ``queue``, ``concurrency_key``): runs
  waiting in a concurrency key's line (only keys with runs waiting are reported);
- ``celery_trigger.timers.due``: timers due and not yet handled by a timer service;
- ``celery_trigger.timers.lateness`` (ms): how late the earliest due timer is.

Example::

    from opentelemetry.sdk.metrics import MeterProvider
    ct.metrics.instrument(meter_provider=MeterProvider(metric_readers=[reader]))
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from ._engine import metrics as _metrics
from ._engine.engine import current

__all__ = ["instrument"]


def instrument(meter_provider: Any = None) -> None:
    """Register the gauges on ``meter_provider`` (the global one when None).

    Example: ``ct.metrics.instrument()`` in the process that exports metrics (a worker, or
    a small exporter process)."""
    # OpenTelemetry is optional: imported only when metrics are asked for.
    otel_metrics = importlib.import_module("opentelemetry.metrics")
    provider = meter_provider or otel_metrics.get_meter_provider()
    meter = provider.get_meter("celery_trigger")
    observation = otel_metrics.Observation

    def queue_running(options: Any) -> Iterable[Any]:
        for q in _metrics.queues(current()):
            yield observation(q.running, {"queue": q.queue})

    def queue_queued(options: Any) -> Iterable[Any]:
        for q in _metrics.queues(current()):
            yield observation(q.queued, {"queue": q.queue})

    def key_queued(options: Any) -> Iterable[Any]:
        for k in _metrics.concurrency_keys(current()):
            yield observation(k.queued, {"queue": k.queue, "concurrency_key": k.concurrency_key})

    def timers_due(options: Any) -> Iterable[Any]:
        yield observation(_metrics.timers(current()).due)

    def timers_lateness(options: Any) -> Iterable[Any]:
        yield observation(_metrics.timers(current()).lateness_ms)

    gauge = meter.create_observable_gauge
    gauge("celery_trigger.queue.running", [queue_running], unit="{run}")
    gauge("celery_trigger.queue.queued", [queue_queued], unit="{run}")
    gauge("celery_trigger.queue.key_queued", [key_queued], unit="{run}")
    gauge("celery_trigger.timers.due", [timers_due], unit="{timer}")
    gauge("celery_trigger.timers.lateness", [timers_lateness], unit="ms")
