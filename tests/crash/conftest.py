"""Crash tests: real ``celery worker`` subprocesses (prefork) that the tests SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

import celery_trigger as ct
from celery_trigger import _setup
from tests import brokers
from tests.helpers import redis_client

ROOT = Path(__file__).resolve().parents[2]


class WorkerProcess:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc = proc
        self.log = log

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


class CrashEnv:
    def __init__(self, redis_url: str, tmp: Path) -> None:
        self.redis_url = redis_url
        self.prefix = f"c{uuid.uuid4().hex[:10]}"
        self.marks = tmp / "marks"
        self.marks.mkdir()
        self.tmp = tmp
        self.workers: list[WorkerProcess] = []
        self.env = {
            **os.environ,
            "CT_CRASH_REDIS": redis_url,
            "CT_CRASH_PREFIX": self.prefix,
            "CT_CRASH_MARKS": str(self.marks),
            "PYTHONPATH": str(ROOT),
        }
        # The test process talks to the same store as the workers, as a client.
        self.app = Celery(
            "crash-client",
            broker=brokers.broker_url(redis_url),
            backend=f"{redis_url}/0",
            set_as_current=False,
        )
        self.app.conf.task_default_queue = f"q-{self.prefix}"
        self.trigger = ct.setup(
            self.app,
            redis_url=f"{redis_url}/0",
            key_prefix=self.prefix,
            lease_seconds=1.5,
            secret_key="crash-test-secret-0123456789abcdef",
        )

    def start_worker(
        self,
        concurrency: int = 2,
        env: dict[str, str] | None = None,
        app: str = "tests.crash.crashapp",
    ) -> WorkerProcess:
        log = self.tmp / f"worker{len(self.workers)}.log"
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                app,
                "worker",
                "-P",
                "prefork",
                "-c",
                str(concurrency),
                "-Q",
                f"q-{self.prefix}",
                "-l",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"w{len(self.workers)}-{self.prefix}@%h",
            ],
            cwd=ROOT,
            env={**self.env, **(env or {})},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = WorkerProcess(proc, log)
        self.workers.append(worker)
        return worker

    def marks_named(self, prefix: str) -> list[str]:
        return sorted(p.name for p in self.marks.iterdir() if p.name.startswith(prefix))

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        client: Any = redis_client(self.trigger.store)
        keys = list(client.scan_iter(f"{self.prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.delete(f"q-{self.prefix}")
        brokers.delete_queues(self.app, f"q-{self.prefix}")


@pytest.fixture
def crash_env(redis_server: str, tmp_path: Path) -> Iterator[CrashEnv]:
    env = CrashEnv(redis_server, tmp_path)
    try:
        yield env
    finally:
        env.close()
        _setup.reset()


def logs(env: CrashEnv) -> str:
    return "\n".join(w.log.read_text(errors="replace")[-3000:] for w in env.workers)


wait_fn = Callable[..., Any]
