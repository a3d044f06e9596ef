"""celery-trigger benchmark app for the ``obs`` case (what its worker imports with ``-A``).

The same app, engine, queue and tasks as ``app_ct`` (imported from it, so configured by the
same environment), plus ``bench-obs-log``: a run that makes ``payload["n"]``
``ct.logger.info`` calls, then as many stdlib ``logger.info`` calls (Celery's task logger,
the bare-Celery way to log), timing each loop itself.

The ``no_otel`` worker runs with ``benchmarks/hide_otel`` on ``PYTHONPATH``: its
``sitecustomize`` makes OpenTelemetry not importable, as if it were not installed. Each run
reports what it saw (``hidden``, ``loaded`` or ``not loaded``).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from celery.utils.log import get_task_logger

import celery_trigger as ct
from benchmarks.app_ct import app, engine, noop

__all__ = ["app", "engine", "log_heavy", "noop"]

_std = get_task_logger("bench.obs")


def _otel_state() -> str:
    module = sys.modules.get("opentelemetry", False)
    if module is None:
        return "hidden"
    return "loaded" if module is not False else "not loaded"


@ct.task(id="bench-obs-log")
def log_heavy(payload: dict[str, Any]) -> dict[str, Any]:
    n = payload["n"]
    t0 = time.perf_counter()
    for i in range(n):
        ct.logger.info("row imported", {"row": i, "file": "a.csv"})
    t1 = time.perf_counter()
    for i in range(n):
        _std.info("row imported row=%s file=%s", i, "a.csv")
    t2 = time.perf_counter()
    return {
        "ct_us_per_call": (t1 - t0) / n * 1e6,
        "stdlib_us_per_call": (t2 - t1) / n * 1e6,
        "otel": _otel_state(),
    }
