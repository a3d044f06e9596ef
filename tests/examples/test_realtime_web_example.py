"""The realtime web example runs for real as a subprocess: uvicorn serving ``server.py``, an
in-process worker, and a client that gets a trigger token, triggers the task over HTTP and
follows the run over SSE; once as a Python client, once as the page in headless Chromium.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator

import pytest
from celery import Celery

import celery_trigger as ct
from celery_trigger import _setup

from .conftest import ROOT, run_python

RUN_SCRIPT = str(ROOT / "examples" / "realtime_web" / "run.py")
CHROMIUM = "/usr/bin/chromium"
DB_REALTIME_WEB = 61  # a database of the private server no other test uses
ORDER = {"QUEUED": 0, "DEQUEUED": 1, "EXECUTING": 2, "COMPLETED": 3}


@pytest.fixture
def realtime_web_store(redis_server: str) -> Iterator[str]:
    yield f"{redis_server}/{DB_REALTIME_WEB}"
    _setup.reset()


def assert_states(states: list[str]) -> None:
    """COMPLETED 100% last, status and progress never going back, some progress seen while
    executing (the worker may start the run before the stream opens, and intermediate
    states may be coalesced, as RT-1 allows)."""
    assert states[-1] == "COMPLETED 100%", states
    parsed = [(ORDER[s.split()[0]], int(s.split()[1][:-1])) for s in states]
    assert parsed == sorted(parsed), states
    assert any(status == ORDER["EXECUTING"] and 0 < p < 100 for status, p in parsed), states


def assert_followed(lines: list[str]) -> None:
    """The states as above, then every log line exactly once, in order."""
    assert_states([line for line in lines if re.fullmatch(r"[A-Z_]+ \d+%", line)])
    logs = [line.removeprefix("log: ") for line in lines if line.startswith("log: ")]
    assert logs == [f"section {i}/5 done" for i in range(1, 6)]


def test_python_client_follows_the_run_like_the_page(realtime_web_store: str) -> None:
    """RT-1, RT-2, RT-4, RT-6: token from the app's backend, trigger over HTTP, progress and
    log chunks over SSE, then ``end``; the run reads back COMPLETED from Redis."""
    out = run_python(RUN_SCRIPT, "--redis", realtime_web_store)
    lines = out.splitlines()
    assert_followed(lines)
    assert lines[-1] == "end"
    run_id = re.search(r"^triggered (run_\w+)$", out, re.M)
    assert run_id, out
    app = Celery("reader", broker=realtime_web_store, set_as_current=False)
    ct.setup(app, key_prefix="realtime_web", secret_key="r" * 40)
    run = ct.runs.retrieve(run_id.group(1))
    assert run.status is ct.RunStatus.COMPLETED and run.metadata == {"progress": 1.0}
    assert run.output["log"][-1] == "section 5/5 done"


def test_example_runs_embedded_without_redis() -> None:
    """The same flow with the embedded store and in-memory broker."""
    lines = run_python(RUN_SCRIPT).splitlines()
    assert_followed(lines)


def test_page_in_headless_chromium_shows_the_progress(realtime_web_store: str) -> None:
    """The static page itself: Chromium fetches a token, triggers, follows the run with
    EventSource and reports the progress it displayed and the log lines it printed."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing but CI is set")
        pytest.skip(f"{CHROMIUM} is not installed")
    out = run_python(RUN_SCRIPT, "--redis", realtime_web_store, "--browser", CHROMIUM)
    followed = re.search(r"^browser followed run_\w+: (.*)$", out, re.M)
    assert followed, out
    assert_states(followed.group(1).split(" | "))
    log = re.search(r"^browser log: (.*)$", out, re.M)
    assert log and log.group(1).split(" | ") == [f"section {i}/5 done" for i in range(1, 6)]
