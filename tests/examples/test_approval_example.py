"""The approval example runs as a subprocess against the session's private Redis.

It serves ``celery_trigger.http.wsgi_app`` with wsgiref, parks a run on a waitpoint token and
approves it with a real HTTP POST to the token's callback URL. Afterwards this process reads
the run and the token back from Redis through the public API.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

import celery_trigger as ct
from celery_trigger import _setup

ROOT = Path(__file__).resolve().parents[2]
RUN_SCRIPT = ROOT / "examples" / "approval" / "run.py"
SUBPROCESS_TIMEOUT_S = 90
# A database of the private server no other suite uses (tests/examples: 51-53 taken).
DB_APPROVAL = 60


def run_example(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(RUN_SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
    return proc.stdout


@pytest.fixture
def approval_store(redis_server: str) -> Iterator[str]:
    """Database ``DB_APPROVAL`` of the private server; this process reads it after the run."""
    yield f"{redis_server}/{DB_APPROVAL}"
    _setup.reset()


def test_approval_example_resumes_the_run_with_the_posted_decision(approval_store: str) -> None:
    """WAIT-12, WAIT-9, WAIT-13: the run parks on a token, a POST to the token URL resumes it
    with the POSTed JSON as output, and the token reads COMPLETED in Redis afterwards."""
    # Given the approval example and a Redis database
    # When it runs: worker, HTTP endpoint, run, reviewer POST
    out = run_example("--redis", approval_store)
    # Then the run parked on a token, the POST succeeded and the run completed as published
    waiting = re.search(r"^run (run_\w+): WAITING on token (waitpoint_\w+)$", out, re.M)
    assert waiting, out
    run_id, token_id = waiting.groups()
    assert re.search(
        rf"^POST /api/v1/waitpoints/tokens/{token_id}/callback/[0-9a-f]{{64}} -> "
        r'200 \{"success":true\}$',
        out,
        re.M,
    ), out
    assert f"run {run_id}: COMPLETED" in out.splitlines()
    output = json.loads(out.split("output: ", 1)[1])
    assert output["status"] == "published" and output["reviewer"] == "ada"
    assert output["attempt"] == 1
    # And another process reads the same run and token from Redis
    app = Celery("reader", broker=approval_store, set_as_current=False)
    ct.setup(app, key_prefix="approval", secret_key="r" * 40)
    run = ct.runs.retrieve(run_id)
    assert run.status is ct.RunStatus.COMPLETED and run.output == output
    token = ct.wait.retrieve_token(token_id)
    assert token.status == "COMPLETED"
    assert token.output == {"approved": True, "reviewer": "ada"}
    assert token.tags == [f"post:{output['post_id']}"]


def test_approval_example_runs_embedded_without_redis() -> None:
    """The same flow with the embedded store and in-memory broker (no services)."""
    # Given no Redis, When the example runs, Then the run completes as published
    out = run_example()
    assert re.search(r"^run run_\w+: COMPLETED$", out, re.M), out
    assert json.loads(out.split("output: ", 1)[1])["status"] == "published"
