"""``celery -A proj trigger dev`` run as a user types it (a subprocess) against a project in a
temporary directory: runs complete in DEVELOPMENT, a saved task file is picked up by the
next run, a broken file does not end the command, SIGINT and SIGTERM stop it cleanly
(issue 13 item 5)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import celery_trigger as ct
from tests.helpers import wait_for

from .conftest import Engine, wait_for_status

ROOT = Path(__file__).resolve().parents[2]

APP = """
import os
from celery import Celery
import celery_trigger as ct

REDIS = os.environ["DEV_REDIS"]
app = Celery("devproj", broker=f"{REDIS}/0", backend=f"{REDIS}/0")
app.conf.task_default_queue = os.environ["DEV_QUEUE"]
app.conf.broker_connection_retry_on_startup = True
ct.setup(app, key_prefix=os.environ["DEV_PREFIX"], dirs=["devproj.tasks"],
         secret_key="test-secret-0123456789abcdef0123456789")
"""

TASK = """
import celery_trigger as ct

@ct.task(id="dev-hello")
def hello(payload, ctx):
    return {{"version": {version}, "environment": ctx.environment.type}}
"""


class DevCommand:
    """The running ``trigger dev`` command; its output goes to a file the test reads."""

    def __init__(self, project: Path, engine: Engine, redis_server: str) -> None:
        self.task_file = project / "devproj" / "tasks" / "hello.py"
        self.log = project / "dev.log"
        env = {**os.environ, "PYTHONPATH": f"{project}{os.pathsep}{ROOT}",
               "DEV_REDIS": redis_server, "DEV_PREFIX": engine.prefix,
               "DEV_QUEUE": engine.queue}  # fmt: skip
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "devproj.app", "trigger", "dev",
                 "--poll-interval", "0.1", "--shutdown-timeout", "5", "-l", "WARNING"],
                cwd=project, env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def worker_pids(self) -> list[int]:
        return [int(p) for p in re.findall(r"worker started \(pid (\d+)\)", self.output())]

    def write_task(self, source: str) -> None:
        self.task_file.write_text(source)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def dev(tmp_path: Path, engine: Engine, redis_server: str) -> Iterator[DevCommand]:
    package = tmp_path / "devproj"
    (package / "tasks").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "app.py").write_text(APP)
    (package / "tasks" / "__init__.py").write_text("")
    (package / "tasks" / "hello.py").write_text(TASK.format(version=1))
    command = DevCommand(tmp_path, engine, redis_server)
    yield command
    if command.proc.poll() is None:
        command.proc.kill()
        command.proc.wait(timeout=30)
    for pid in command.worker_pids():
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _run(timeout: float = 60.0) -> ct.Run:
    handle = ct.tasks.trigger("dev-hello", {})
    return wait_for_status(handle.id, timeout=timeout)


def _stopped_cleanly(dev: DevCommand, sig: signal.Signals) -> None:
    pids = dev.worker_pids()
    dev.proc.send_signal(sig)
    assert dev.proc.wait(timeout=30) == 0, dev.output()
    assert "[trigger dev] stopping" in dev.output()
    assert pids and not any(_alive(pid) for pid in pids)


def test_dev_runs_in_development_and_reloads_on_change(dev: DevCommand) -> None:
    """A run completes on the dev worker in DEVELOPMENT; after the task file is saved the
    worker restarts and the next run uses the new code; SIGINT stops it (exit 0)."""
    # Given the dev command is running: a run completes in DEVELOPMENT
    first = _run()
    assert first.output == {"version": 1, "environment": "DEVELOPMENT"}, dev.output()
    # When the task file is saved with new code
    dev.write_task(TASK.format(version=2))
    # Then the worker is restarted (the old one has exited before the new one starts)
    wait_for(lambda: len(dev.worker_pids()) == 2, timeout=30, message=dev.output())
    assert "hello.py changed: restarting" in dev.output()
    assert not _alive(dev.worker_pids()[0])
    # And the next run uses the new code
    assert _run().output == {"version": 2, "environment": "DEVELOPMENT"}
    # When Ctrl-C is pressed, the command and its worker exit cleanly
    _stopped_cleanly(dev, signal.SIGINT)


def test_dev_survives_a_broken_file_and_stops_on_sigterm(dev: DevCommand) -> None:
    """A task file that does not import makes the worker exit; the command waits, and the
    fixed file starts a worker that runs the fixed code; SIGTERM stops it (exit 0)."""
    # Given the dev worker is up
    assert _run().output["version"] == 1
    # When a syntax error is saved, the worker cannot start and the command says so
    dev.write_task("def broken(:\n")
    wait_for(lambda: "worker exited" in dev.output(), timeout=60, message=dev.output())
    assert dev.proc.poll() is None
    # When the file is fixed, the next run uses the fixed code
    dev.write_task(TASK.format(version=3))
    assert _run().output["version"] == 3
    # When SIGTERM arrives, the command and its worker exit cleanly
    _stopped_cleanly(dev, signal.SIGTERM)
