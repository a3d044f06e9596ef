"""celery-trigger's gauges as OpenTelemetry metrics, read with the SDK's in-memory reader
(issue 13 item 4). Task ids start with ``mt-``."""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import celery_trigger as ct

from .conftest import Engine


@ct.task(id="mt-limited", queue={"name": "mt-q", "concurrency_limit": 1})
def mt_limited(payload: Any) -> None:
    return None


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out[metric.name] = list(metric.data.data_points)
    return out


@pytest.fixture
def reader() -> InMemoryMetricReader:
    reader = InMemoryMetricReader()
    ct.metrics.instrument(meter_provider=MeterProvider(metric_readers=[reader]))
    return reader


def test_gauges_report_queued_runs_and_due_timers(engine: Engine, reader: Any) -> None:
    """Issue 13 §4: queued per queue, due timers and their lateness, read from the store."""
    # Given two runs of a queue limited to 1 and no worker, and a timer 5 s overdue
    engine.store.put_queue("mt-q", {"concurrency_limit": "1"})
    for n in range(2):
        mt_limited.trigger({"n": n})
    engine.store.add_timers([("probe|mt", int(time.time() * 1000) - 5000)])
    # When the reader collects
    points = _points(reader)
    # Then the queue's gauges and the timer backlog are reported
    queued = {p.attributes["queue"]: p.value for p in points["celery_trigger.queue.queued"]}
    running = {p.attributes["queue"]: p.value for p in points["celery_trigger.queue.running"]}
    assert running["mt-q"] + queued["mt-q"] == 2
    assert points["celery_trigger.timers.due"][0].value >= 1
    assert points["celery_trigger.timers.lateness"][0].value >= 5000
