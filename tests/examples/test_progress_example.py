"""The realtime progress example (examples/progress) runs as a subprocess, embedded and on
Redis: a task sets ``progress`` in its metadata and streams log lines, and the script draws a
terminal bar from ``runs.subscribe_to_run(...).with_streams()`` (SEMANTICS §12.1: RT-1, RT-2,
RT-4)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import redis
from celery import Celery

import celery_trigger as ct
from celery_trigger import _setup

from .conftest import ROOT, run_python

EXAMPLE = str(ROOT / "examples" / "progress" / "run.py")
DB_PROGRESS = 57  # a database of the private server no other test uses
STEPS = 8
ARGS = ("--steps", str(STEPS), "--rows", "800", "--pause", "0.02")


def check(out: str) -> str:
    """Progress reaches 100 % without going back, every log line arrives in order, the bar
    ends COMPLETED and the run reads COMPLETED. Returns the run id."""
    lines = out.replace("\r", "\n").splitlines()
    match = re.fullmatch(r"run (run_\w+): COMPLETED", lines[-2])
    assert match, out
    assert lines[-1] == f'output: {{"log_lines": {STEPS}, "rows": 800}}', out
    seen = re.fullmatch(r"progress values seen: (.*)", lines[-3])
    assert seen, out
    values = [int(v.rstrip("%")) for v in seen.group(1).split(", ")]
    assert values == sorted(values) and values[-1] == 100, out
    logs = [line for line in lines if line.startswith("  log: ")]
    expected = [f"  log: step {i}/{STEPS}: exported {100 * i} rows" for i in range(1, STEPS + 1)]
    assert logs == expected, out
    bars = [line for line in lines if "%|" in line]
    assert re.match(r"COMPLETED +800 rows 100%\|█+\|", bars[-1]), out
    percents = [int(m.group(1)) for m in map(re.compile(r" +(\d+)%\|").search, bars) if m]
    assert percents == sorted(percents), out
    return match.group(1)


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    url = f"{redis_server}/{DB_PROGRESS}"
    redis.Redis.from_url(url).flushdb()
    yield url
    _setup.reset()


def test_progress_bar_follows_the_run_without_redis() -> None:
    """RT-1, RT-2, RT-4: embedded, the bar rises to 100 % from metadata updates, every
    ``log`` chunk is printed in order and the subscription ends on COMPLETED."""
    check(run_python(EXAMPLE, *ARGS))


def test_progress_bar_follows_the_run_on_redis(redis_url: str) -> None:
    """RT-1, RT-2, RT-4: the same on Redis; another process reads the stored progress and
    the run's ``log`` stream listed in ``realtime_streams``."""
    run_id = check(run_python(EXAMPLE, *ARGS, "--redis", redis_url))
    app = Celery("reader", broker=redis_url, set_as_current=False)
    ct.setup(app, key_prefix="progress")
    run = ct.runs.retrieve(run_id)
    assert run.status is ct.RunStatus.COMPLETED
    assert run.metadata == {"progress": 1.0, "rows_done": 800}
    assert run.realtime_streams == ["log"]
    chunks = [
        part.chunk for part in ct.runs.subscribe_to_run(run_id).with_streams() if part.type == "log"
    ]
    assert chunks == [f"step {i}/{STEPS}: exported {100 * i} rows" for i in range(1, STEPS + 1)]
