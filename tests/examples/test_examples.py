"""Examples are tests: each example runs as a subprocess, embedded and on Redis.

Embedded mode needs no service. Redis mode points the example at the session's private
server (``redis_server``), one database per test, and reads the run back from that database
through the public API, which proves the run really lived in Redis.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from celery import Celery

import celery_trigger as ct
from celery_trigger import _setup

from .conftest import ROOT, run_python

EXAMPLES = ROOT / "examples"
# Databases of the private server for these tests (it has 64; the other suites use db 0).
DB_QUICKSTART = 51
DB_RETRIES = 52


def run_id_in(output: str) -> str:
    match = re.search(r"\brun (run_\w+):", output)
    assert match, f"no run id in:\n{output}"
    return match.group(1)


@pytest.fixture
def stored_run(redis_server: str) -> Iterator[Callable[[str, int], ct.Run]]:
    """Read a run from database ``db`` of the private server, from this process."""

    def read(run_id: str, db: int) -> ct.Run:
        app = Celery("reader", broker=f"{redis_server}/{db}", set_as_current=False)
        ct.setup(app)
        return ct.runs.retrieve(run_id)

    yield read
    _setup.reset()


def test_quickstart_example_completes_on_second_attempt_without_redis() -> None:
    """RUNS-1, TASK-31: the embedded quickstart retries once and prints the output."""
    # Given the quickstart example and no Redis settings
    # When it runs in embedded mode
    out = run_python(str(EXAMPLES / "quickstart" / "app.py"))
    # Then the run completed on attempt 2 with the task's return value
    assert "mode: embedded" in out
    assert re.search(r"run run_\w+: COMPLETED after 2 attempts", out), out
    assert "output: {'message': 'Hello, Ada!', 'attempt': 2}" in out


def test_quickstart_example_stores_its_completed_run_in_redis(
    redis_server: str, stored_run: Callable[[str, int], ct.Run]
) -> None:
    """RUNS-1, TASK-31: with --redis the run record lives in Redis and reads COMPLETED."""
    # Given a Redis database
    url = f"{redis_server}/{DB_QUICKSTART}"
    # When the quickstart example runs against it
    out = run_python(str(EXAMPLES / "quickstart" / "app.py"), "--redis", url)
    # Then it printed the completed run, and another process reads the same run from Redis
    assert "mode: redis" in out
    assert re.search(r"run run_\w+: COMPLETED after 2 attempts", out), out
    run = stored_run(run_id_in(out), DB_QUICKSTART)
    assert run.status is ct.RunStatus.COMPLETED
    assert run.attempt_count == 2
    assert run.output == {"message": "Hello, Ada!", "attempt": 2}


RETRIES_OUTPUT = [
    "  ok: attempt 1",
    "  ok: attempt 2",
    "  ok: attempt 3",
    "ok: COMPLETED after 3 attempts ({'charge_id': 'ch_ok_3'})",
    "  rate-limited: attempt 1",
    "  rate-limited: attempt 2",
    "rate-limited: COMPLETED after 2 attempts ({'charge_id': 'ch_rate-limited_2'})",
    "  declined: attempt 1",
    "  on_failure: declined gave up: card declined: insufficient funds",
    "declined: FAILED after 1 attempt (CardDeclined: card declined: insufficient funds)",
]


def test_retries_example_follows_policy_and_catch_error_without_redis() -> None:
    """TASK-7, TASK-8, TASK-10, TASK-20: policy retries, catch_error delay and skip, on_failure."""
    # Given the retries example
    # When it runs in embedded mode
    out = run_python(str(EXAMPLES / "retries" / "app.py"))
    # Then each scenario made the expected attempts and ended as catch_error decided
    assert out.splitlines() == RETRIES_OUTPUT


def test_retries_example_follows_policy_and_catch_error_on_redis(redis_server: str) -> None:
    """TASK-7, TASK-8, TASK-10, TASK-20: the same outcomes with Redis as store and broker."""
    # Given a Redis database
    url = f"{redis_server}/{DB_RETRIES}"
    # When the retries example runs against it
    out = run_python(str(EXAMPLES / "retries" / "app.py"), "--redis", url)
    # Then the outcomes are the embedded ones
    assert out.splitlines() == RETRIES_OUTPUT
