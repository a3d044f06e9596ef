"""The fault suite: real redis-servers the tests stop and restart, real worker subprocesses
they SIGKILL, RabbitMQ as a separate broker. Each scenario reports triggered / completed /
lost / duplicated / recovery time; the table is printed at the end of the session."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

import celery_trigger as ct
from celery_trigger import _setup
from tests.helpers import free_port, port_accepts, wait_for

ROOT = Path(__file__).resolve().parents[2]
RABBIT = "amqp://guest:guest@127.0.0.1:5672//"


class RedisProc:
    """A redis-server on a fixed port and data directory, stopped and started at will."""

    def __init__(self, tmp: Path, *, aof: bool) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("redis-server is not installed but CI is set")
            pytest.skip("redis-server is not installed")
        self.binary, self.aof, self.port = binary, aof, free_port()
        self.dir = tmp / f"redis-{self.port}"
        self.dir.mkdir()
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.aof else []
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        self.proc = subprocess.Popen(
            [*args, "--appendonly", "no", *persistence, "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_accepts(self.port), timeout=10, message="redis-server did not start")

    def stop(self) -> None:
        """Stop the server (SIGTERM: with AOF it fsyncs first; without, the data is gone)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def close(self) -> None:
        self.stop()


class Worker:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.proc, self.log = proc, log

    def ready(self) -> bool:
        return b"ready." in self.log.read_bytes()

    def kill(self) -> None:
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


@dataclass
class Report:
    scenario: str
    triggered: int
    completed: int
    lost: int
    duplicated: int
    recovery_s: float | None
    note: str = ""


REPORTS: list[Report] = []


class FaultEnv:
    """A store (``store``), a broker URL, a client app on both, worker subprocesses."""

    def __init__(self, tmp: Path, store: RedisProc, broker_url: str) -> None:
        self.store, self.broker_url, self.tmp = store, broker_url, tmp
        self.prefix = f"f{uuid.uuid4().hex[:10]}"
        self.marks = tmp / "marks"
        self.marks.mkdir(parents=True)
        self.workers: list[Worker] = []
        self.env = {
            **os.environ,
            "CT_FAULT_STORE": store.url,
            "CT_FAULT_BROKER": broker_url,
            "CT_FAULT_PREFIX": self.prefix,
            "CT_FAULT_MARKS": str(self.marks),
            "PYTHONPATH": str(ROOT),
        }
        self.app = Celery("fault-client", broker=broker_url, set_as_current=False)
        self.app.conf.task_default_queue = f"q-{self.prefix}"
        self.trigger = ct.setup(
            self.app,
            redis_url=store.url,
            key_prefix=self.prefix,
            secret_key="fault-test-secret-0123456789abcdef",
        )

    def start_worker(self, concurrency: int = 4) -> Worker:
        log = self.tmp / f"worker{len(self.workers)}.log"
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "tests.faults.faultapp", "worker"),
                *("-P", "prefork", "-c", str(concurrency), "-Q", f"q-{self.prefix}"),
                *("-l", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat"),
                *("-n", f"w{len(self.workers)}-{self.prefix}@%h"),
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = Worker(proc, log)
        self.workers.append(worker)
        wait_for(worker.ready, timeout=30, interval=0.05, message="worker did not start")
        return worker

    def trigger_many(self, task: str, n: int, **payload: Any) -> list[str]:
        items = [{"id": task, "payload": {"n": i, **payload}} for i in range(n)]
        return list(ct.batch.trigger(items).runs)

    def marks_named(self, prefix: str) -> list[str]:
        return [p.name for p in self.marks.iterdir() if p.name.startswith(prefix)]

    def statuses(self, run_ids: list[str]) -> dict[str, str]:
        out = {}
        for run_id in run_ids:
            try:
                out[run_id] = ct.runs.retrieve(run_id).status.value
            except ct.TriggerError:
                out[run_id] = "?"
        return out

    def all_completed(self, run_ids: list[str]) -> bool:
        done = ct.RunStatus.COMPLETED.value
        return all(s == done for s in self.statuses(run_ids).values())

    def report(
        self, scenario: str, run_ids: list[str], kinds: tuple[str, ...], since: float | None
    ) -> Report:
        """Wait (≤ 30 s) for every run to complete; count lost, duplicated, recovery time."""
        try:
            wait_for(lambda: self.all_completed(run_ids), timeout=30, interval=0.05)
        except AssertionError:
            pass
        recovered = time.monotonic()
        statuses = self.statuses(run_ids)
        completed = sum(s == ct.RunStatus.COMPLETED.value for s in statuses.values())
        ends: dict[str, int] = {}
        for kind in kinds:
            for name in self.marks_named(f"end-{kind}-"):
                run_id = name.split(".")[0].removeprefix(f"end-{kind}-")
                ends[run_id] = ends.get(run_id, 0) + 1
        duplicated = sum(1 for r in run_ids if ends.get(r, 0) > 1)
        report = Report(
            scenario,
            len(run_ids),
            completed,
            len(run_ids) - completed,
            duplicated,
            None if since is None else round(recovered - since, 2),
        )
        REPORTS.append(report)
        return report

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        if self.broker_url.startswith("amqp"):
            with self.app.connection_for_write() as conn:
                conn.default_channel.queue_delete(f"q-{self.prefix}")


@pytest.fixture
def fault_env(tmp_path: Path) -> Iterator[Any]:
    """A factory ``(store_aof, broker) -> FaultEnv``; broker is "same", "redis" or "rabbit"."""
    made: list[FaultEnv] = []
    servers: list[RedisProc] = []

    def make(*, aof: bool = True, broker: str = "redis") -> FaultEnv:
        store = RedisProc(tmp_path, aof=aof)
        servers.append(store)
        if broker == "same":
            url = store.url
        elif broker == "redis":
            other = RedisProc(tmp_path, aof=False)
            servers.append(other)
            url = other.url
        else:
            if not port_accepts(5672):
                pytest.skip("RabbitMQ is not running on 127.0.0.1:5672")
            url = RABBIT
        env = FaultEnv(tmp_path / f"env{len(made)}", store, url)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()
    for server in servers:
        server.close()
    _setup.reset()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORTS:
        return
    write = terminalreporter.write_line
    write("")
    write("fault suite: scenario | triggered | completed | lost | duplicated | recovery (s)")
    for r in REPORTS:
        recovery = "-" if r.recovery_s is None else f"{r.recovery_s:.2f}"
        write(
            f"  {r.scenario:<44} {r.triggered:>4} {r.completed:>4} {r.lost:>4} "
            f"{r.duplicated:>4} {recovery:>7}  {r.note}"
        )
