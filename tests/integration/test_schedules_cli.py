"""``celery -A proj trigger schedules sync|list`` (API.md "Command line", SEMANTICS §10.1):
the plugin is registered with Celery's own command line through the ``celery.commands``
entry point, and runs as a subprocess here exactly as a user types it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import celery_trigger as ct
from celery_trigger._engine.schedules import declarative_id

from .conftest import Engine

ROOT = Path(__file__).resolve().parents[2]


def celery(engine: Engine, redis_server: str, *args: str) -> str:
    env = {
        **os.environ,
        "CT_CRASH_REDIS": redis_server,
        "CT_CRASH_PREFIX": engine.prefix,
        "PYTHONPATH": str(ROOT),
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "tests.crash.schedapp",
            "trigger",
            "schedules",
            *args,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_sync_writes_declarative_schedules_and_list_shows_them(
    engine: Engine, redis_server: str
) -> None:
    """§10.1: `schedules sync` writes the app's declarative schedules (as a worker start
    does); `schedules list` prints them with their next run."""
    # Given a project (the crash tests' schedule app) with one declarative schedule
    sid = declarative_id("crash-every-minute")
    # When `celery -A proj trigger schedules sync` runs twice
    first = celery(engine, redis_server, "sync")
    second = celery(engine, redis_server, "sync")
    # Then the schedule was created once, then updated in place
    assert f"created {sid}" in first and f"updated {sid}" in second
    assert "1 declarative schedule(s) synced" in second
    stored = ct.schedules.retrieve(sid)
    assert (stored.task, stored.cron, stored.timezone) == ("crash-every-minute", "* * * * *", "UTC")
    # When `schedules list` runs
    listing = celery(engine, redis_server, "list", "--per-page", "5").splitlines()
    # Then it prints a header, the schedule's row and the page line
    assert listing[0].split() == ["ID", "TYPE", "TASK", "CRON", "TIMEZONE", "ACTIVE", "NEXT", "RUN"]
    assert listing[1].split()[:3] == [sid, "DECLARATIVE", "crash-every-minute"]
    assert stored.next_run is not None and stored.next_run.isoformat() in listing[1]
    assert listing[-1] == "page 1 of 1 (1 schedules)"
