"""Schedules without a beat process: three real worker processes share one schedule
(SEMANTICS §10, SCHED-12, D-12).

Every worker runs a timer service that may claim the schedule's ``sched|<id>`` timer; the
schedule clock runs 120 times faster than the wall clock (a minute per half second), so each
occurrence is contended by the three workers within a second of the previous one.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest

import celery_trigger as ct

from ..helpers import wait_for
from .conftest import CrashEnv, logs

pytestmark = [pytest.mark.crash, pytest.mark.slow]

SPEED = 120
TASK_ID = "crash-every-minute"  # schedapp's task (not imported: it would set up its app here)
OCCURRENCES = 8


def test_three_workers_fire_each_occurrence_exactly_once(crash_env: CrashEnv) -> None:
    """SCHED-12, D-12: with three workers each occurrence produces exactly one run and one
    execution, and the runs chain by last_timestamp with no duplicate."""
    # Given three worker processes sharing a schedule clock that starts just before 10:00
    wall = int(time.time() * 1000)
    start = int(datetime.fromisoformat("2030-01-01T09:59:58+00:00").timestamp() * 1000)
    clock = {"CT_SCHED_CLOCK": f"{wall}:{start - wall}:{SPEED}"}
    for _ in range(3):
        crash_env.start_worker(concurrency=2, env=clock, app="tests.crash.schedapp")

    # When every worker synced the declarative every-minute schedule and it ran a while
    def runs() -> list[ct.Run]:
        return [r for r in ct.runs.list(task_identifier=TASK_ID, limit=100) if r.is_completed]

    def enough() -> list[ct.Run] | None:
        found = runs()
        return found if len(found) >= OCCURRENCES else None

    try:
        done = wait_for(enough, timeout=60)
    except AssertionError:
        raise AssertionError(f"too few scheduled runs; logs:\n{logs(crash_env)}") from None
    for worker in crash_env.workers:
        worker.stop()
    # Then every run is for a distinct occurrence, and each ran exactly once
    final = sorted(runs(), key=lambda r: r.output["timestamp"])
    stamps = [r.output["timestamp"] for r in final]
    assert len(stamps) == len(set(stamps)) >= len(done)
    ticks = crash_env.marks_named("tick-")
    per_occurrence = [t.split(".")[0] for t in ticks]
    assert len(per_occurrence) == len(set(per_occurrence)) == len(final)
    # and the runs chain: each last_timestamp is the previous run's timestamp
    assert final[0].output["last_timestamp"] is None
    assert [r.output["last_timestamp"] for r in final[1:]] == stamps[:-1]
