"""celery-trigger's gauges as OpenTelemetry metrics, read with the SDK's in-memory reader
(issue 13 item 4). Task ids start with ``mt-``."""

from __future__ import annotations

import time
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

import celery_trigger as ct
from tests.helpers import wait_for

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


@ct.task(id="mt-keyed", queue={"name": "mt-kq", "concurrency_limit": 1})
def mt_keyed(payload: Any) -> None:
    return None


def _key_points(reader: InMemoryMetricReader) -> dict[tuple[str, str], int]:
    points = _points(reader).get("celery_trigger.queue.key_queued", [])
    return {(p.attributes["queue"], p.attributes["concurrency_key"]): p.value for p in points}


def test_gauge_reports_runs_queued_per_concurrency_key(engine: Engine, reader: Any) -> None:
    """Issue 13 §4: queued per concurrency key, read from each key's line; keys with nothing
    waiting are not reported."""
    # Given a limit-1 queue and no worker: three runs of key "acme", one of key "solo"
    engine.store.put_queue("mt-kq", {"concurrency_limit": "1"})
    for n, key in enumerate(["acme", "acme", "acme", "solo"]):
        mt_keyed.trigger({"n": n}, concurrency_key=key)
    # When the reader collects
    points = _key_points(reader)
    # Then each key's line is reported, and together they are the queue's queued runs
    assert points == {("mt-kq", "acme"): 3, ("mt-kq", "solo"): 1}
    queued = {
        p.attributes["queue"]: p.value for p in _points(reader)["celery_trigger.queue.queued"]
    }
    assert queued["mt-kq"] == 4
    # When a worker runs them, the lines drain and keys with nothing waiting are not reported
    with engine.worker(concurrency=2):
        wait_for(lambda: not _key_points(reader), timeout=15, message=str(_key_points(reader)))
