"""The run-metadata example (examples/metadata) runs as a subprocess, embedded and on Redis:
children report progress to their parent's metadata (SEMANTICS §8, META-2, META-8)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import redis
from celery import Celery

import celery_trigger as ct
from celery_trigger import _setup

from .conftest import ROOT, run_python

EXAMPLE = str(ROOT / "examples" / "metadata" / "app.py")
DB_METADATA = 46  # a database of the private server no other test uses
FINAL = [
    "progress: 5/5 published",
    "resized: beach-800w.jpg, forest-800w.jpg, harbour-800w.jpg, market-800w.jpg, summit-800w.jpg",
    "album: summer; parent saw done=5",
]


def check(out: str) -> str:
    """The final lines are exact; the progress lines never go backwards. Returns the run id."""
    lines = out.splitlines()
    assert lines[-3:] == FINAL, out
    match = re.fullmatch(r"run (run_\w+): COMPLETED", lines[-4])
    assert match, out
    done = [int(m.group(1)) for m in map(re.compile(r"  \w+: (\d)/").match, lines[:-4]) if m]
    assert done == sorted(done) and done[-1] == 5, out
    return match.group(1)


@pytest.fixture
def redis_url(redis_server: str) -> Iterator[str]:
    url = f"{redis_server}/{DB_METADATA}"
    redis.Redis.from_url(url).flushdb()
    yield url
    _setup.reset()


def test_children_report_progress_to_the_parent_without_redis() -> None:
    """META-8, META-2: five children increment the parent's ``done``; the watcher sees the
    progress rise to 5/5 and the parent reads the children's writes after ``refresh``."""
    check(run_python(EXAMPLE))


def test_children_report_progress_to_the_parent_on_redis(redis_url: str) -> None:
    """META-8, META-2, RUNS-1: the same on Redis; another process reads the stored document."""
    run_id = check(run_python(EXAMPLE, "--redis", redis_url))
    app = Celery("reader", broker=redis_url, set_as_current=False)
    ct.setup(app)
    run = ct.runs.retrieve(run_id)
    assert run.metadata is not None and run.metadata["done"] == 5
    assert run.metadata["album"] == "summer" and len(run.children) == 5
    assert all(ct.runs.retrieve(c).metadata == {"status": "resized"} for c in run.children)
