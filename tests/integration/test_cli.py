"""``celery -A proj trigger runs|tokens ...`` run as a user types them (a subprocess) against
a real worker of the same project (issue 13 item 5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import celery_trigger as ct
from celery_trigger.status import RunStatus

from .cli_tasks import cli_approve, cli_echo, cli_fails
from .conftest import Engine, wait_for_status

ROOT = Path(__file__).resolve().parents[2]


def celery(engine: Engine, redis_server: str, *args: str, ok: bool = True) -> str:
    env = {**os.environ, "CT_CLI_REDIS": redis_server, "CT_CLI_PREFIX": engine.prefix,
           "PYTHONPATH": str(ROOT)}  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "tests.integration.cliapp", "trigger", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert (proc.returncode == 0) == ok, proc.stdout + proc.stderr
    return proc.stdout + ("" if ok else proc.stderr)


def test_runs_list_show_logs_and_replay(engine: Engine, redis_server: str) -> None:
    """Issue 13 §5: list with filters, show (record, attempts, metadata, logs), logs, replay,
    as tables and as JSON."""
    with engine.worker(concurrency=2):
        # Given a completed tagged run and a failed run
        done = cli_echo.trigger({"name": "ada"}, tags=["cli-tag"])
        failed = cli_fails.trigger({})
        wait_for_status(done.id)
        wait_for_status(failed.id)
        # When the runs are listed by tag, and by status as JSON
        listing = celery(engine, redis_server, "runs", "list", "--tag", "cli-tag").splitlines()
        by_status = json.loads(celery(engine, redis_server, "runs", "list", "--status",
                                      "FAILED", "--json"))  # fmt: skip
        # Then the table has the tagged run only, the JSON the failed one
        assert listing[0].split()[:3] == ["ID", "TASK", "STATUS"]
        assert listing[1].split()[:3] == [done.id, "cli-echo", "COMPLETED"]
        assert listing[-1] == "1 run(s)"
        assert [r["id"] for r in by_status] == [failed.id]
        assert by_status[0]["error"]["message"] == "no such row"
        # When a run is shown
        shown = celery(engine, redis_server, "runs", "show", done.id)
        # Then its record, attempts, metadata and last logs are printed
        assert f"id:              {done.id}" in shown
        assert "status:          COMPLETED" in shown and '"hello": "ada"' in shown
        assert '"step": "done"' in shown and "INFO  echoing name=ada" in shown
        failed_shown = celery(engine, redis_server, "runs", "show", failed.id)
        assert "  1  ValueError: no such row" in failed_shown
        # When its logs are followed (the run is final: they end at once)
        logs = celery(engine, redis_server, "runs", "logs", done.id, "--follow", "--json")
        assert [json.loads(line)["message"] for line in logs.splitlines()] == ["echoing"]
        # When it is replayed, a new run of the same task and payload completes
        new_id = celery(engine, redis_server, "runs", "replay", done.id).strip()
        replayed = wait_for_status(new_id)
        assert replayed.output == {"hello": "ada"} and replayed.is_replay
        # And an unknown run is a one-line error
        error = celery(engine, redis_server, "runs", "show", "run_missing", ok=False)
        assert "RunNotFoundError" in error


def test_tokens_list_and_complete_resume_a_run_and_cancel(
    engine: Engine, redis_server: str
) -> None:
    """Issue 13 §5: tokens list shows a waiting token; tokens complete resumes its run;
    runs cancel cancels."""
    with engine.worker(concurrency=2):
        # Given two runs parked on tokens
        token = ct.wait.create_token(timeout="1h", tags=["cli"])
        other = ct.wait.create_token(timeout="1h")
        approved = cli_approve.trigger({"token": token.id})
        doomed = cli_approve.trigger({"token": other.id})
        wait_for_status(approved.id, RunStatus.WAITING)
        wait_for_status(doomed.id, RunStatus.WAITING)
        # When tokens are listed
        listing = celery(engine, redis_server, "tokens", "list", "--status", "WAITING")
        assert token.id in listing and other.id in listing and "2 token(s)" in listing
        # When one is completed with JSON data, its run resumes with it
        out = celery(engine, redis_server, "tokens", "complete", token.id, '{"approved": true}')
        assert out.strip() == f"completed {token.id}"
        assert wait_for_status(approved.id).output == {"approved": True}
        # When the other run is cancelled
        assert celery(engine, redis_server, "runs", "cancel", doomed.id).strip() == (
            f"cancelled {doomed.id}"
        )
        assert ct.runs.retrieve(doomed.id).status is RunStatus.CANCELED
        # And bad JSON is refused before anything happens
        assert "not JSON" in celery(engine, redis_server, "tokens", "complete", other.id,
                                    "{bad", ok=False)  # fmt: skip
