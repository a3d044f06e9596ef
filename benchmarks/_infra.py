"""Plumbing for the benchmarks: a private redis-server, worker subprocesses, CPU accounting.

Invariants:
- every address is 127.0.0.1; the redis-server is started on a free port with no persistence
  (``--save '' --appendonly no``) and stopped by the context manager that started it;
- a worker subprocess runs in its own session, so stopping it kills exactly its own process
  group (its pool children) and nothing else;
- ``CpuMeter`` attributes CPU time to the producer (this process), the worker tree and the
  redis-server from ``/proc``; the rest of the machine's busy time is reported as
  ``other_procs_cpu_s`` (another session using the box makes a run untrustworthy).
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RESULTS_DIR = os.path.join(HERE, "results")
LOG_DIR = os.path.join(RESULTS_DIR, "logs")
#: Flags used for every worker, as in the baseline: no chatter between workers.
WORKER_FLAGS = ["--without-gossip", "--without-mingle", "--without-heartbeat"]
HZ = os.sysconf("SC_CLK_TCK")


def log(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


# redis --------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """A throw-away redis-server on 127.0.0.1 (``base`` is ``redis://127.0.0.1:PORT``)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.base = ""

    def __enter__(self) -> RedisServer:
        import redis

        for _ in range(10):
            self.port = _free_port()
            self.proc = subprocess.Popen(
                [
                    "redis-server",
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--loglevel",
                    "warning",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if redis.Redis(host="127.0.0.1", port=self.port).ping():
                        self.base = f"redis://127.0.0.1:{self.port}"
                        return self
                except redis.RedisError:
                    time.sleep(0.02)
            self._stop()
        raise SystemExit("could not start redis-server")

    def client(self, db: int = 0) -> Any:
        import redis

        return redis.Redis.from_url(f"{self.base}/{db}")

    def flushall(self) -> None:
        self.client(0).flushall()

    def _stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __exit__(self, *exc: object) -> None:
        self._stop()


# worker subprocess --------------------------------------------------------------------------
class Worker:
    """``celery -A <module> worker -P prefork -c N`` as a child process in its own session.

    ``ready`` is called after start; it must round-trip a few tasks (pool children up and
    warm) and raise on failure.
    """

    def __init__(
        self,
        module: str,
        queue: str,
        env: dict[str, str],
        *,
        tag: str,
        pool: str = "prefork",
        concurrency: int = 2,
        ready: Callable[[Worker], None] | None = None,
    ) -> None:
        self.module, self.queue, self.env, self.tag = module, queue, env, tag
        self.pool, self.concurrency, self.ready = pool, concurrency, ready
        self.proc: subprocess.Popen[bytes] | None = None
        self.ready_s = 0.0

    def __enter__(self) -> Worker:
        os.makedirs(LOG_DIR, exist_ok=True)
        self.log_path = os.path.join(LOG_DIR, f"{self.tag}-{os.getpid()}.log")
        self._log = open(self.log_path, "w")  # closed in __exit__
        env = {**os.environ, **self.env}
        env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
        self.name = f"{self.tag}-{os.getpid()}@localhost"
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            self.module,
            "worker",
            "-P",
            self.pool,
            "-c",
            str(self.concurrency),
            "-l",
            "WARNING",
            "-Q",
            self.queue,
            "-n",
            self.name,
            *WORKER_FLAGS,
        ]
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd,
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            if self.ready is not None:
                self.ready(self)
        except BaseException:
            self.__exit__()
            raise
        self.ready_s = time.perf_counter() - t0
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def pids(self) -> list[int]:
        """The worker's main process and its pool children."""
        if self.proc is None:
            return []
        return [self.proc.pid, *children_of(self.proc.pid)]

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)  # warm shutdown
                try:
                    self.proc.wait(15)
                except subprocess.TimeoutExpired:
                    pass
            try:  # whatever is left of our own worker's process group
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None
        self._log.close()


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(entry))
    return out


# CPU accounting -----------------------------------------------------------------------------
def _pid_cpu_s(pid: int, reaped_children: bool = False) -> float:
    """utime + stime of ``pid`` (plus cutime + cstime: its reaped children, if asked)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / HZ


def _tree_cpu_s() -> float:
    """CPU of this process and every descendant, live or already reaped."""
    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    stack = children_of(os.getpid())
    while stack:
        pid = stack.pop()
        total += _pid_cpu_s(pid, reaped_children=True)
        stack.extend(children_of(pid))
    return total


def _machine_busy() -> tuple[float, float]:
    """(busy seconds over all CPUs, of which irq+softirq seconds)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = (v + [0] * 7)[:7]
    return (user + nice + system + irq + softirq) / HZ, (irq + softirq) / HZ


class CpuMeter:
    """CPU seconds used between ``start()`` and ``stop()`` by each tracked party.

    ``other_procs_cpu_s`` is the machine's busy time (less irq/softirq) minus everything this
    process and its descendants (redis-server, workers, pool children) used.
    """

    def __init__(self, parties: dict[str, Iterable[int]]) -> None:
        self.parties = {name: list(pids) for name, pids in parties.items()}

    def _snap(self) -> dict[str, float]:
        t = os.times()
        snap = {name: sum(_pid_cpu_s(p) for p in pids) for name, pids in self.parties.items()}
        snap["producer"] = t.user + t.system
        snap["_busy"], snap["_irq"] = _machine_busy()
        snap["_tree"] = _tree_cpu_s()
        snap["_wall"] = time.perf_counter()
        return snap

    def start(self) -> CpuMeter:
        self._a = self._snap()
        return self

    def stop(self) -> dict[str, float]:
        b = self._snap()
        d = {k: b[k] - self._a[k] for k in b}
        out = {f"{k}_cpu_s": round(v, 3) for k, v in d.items() if not k.startswith("_")}
        out["other_procs_cpu_s"] = round(max(d["_busy"] - d["_irq"] - d["_tree"], 0.0), 2)
        out["irq_softirq_s"] = round(d["_irq"], 2)
        out["wall_s"] = round(d["_wall"], 3)
        return out


def wait_for_quiet(
    max_wait_s: float, threshold: float = 0.3, window_s: float = 1.0
) -> dict[str, float]:
    """Wait (up to ``max_wait_s``) until the rest of the machine uses < ``threshold`` CPUs.

    Measured over ``window_s`` windows while this process idles; returns the time waited and
    the last reading (in CPUs busy). Another session's test run on a shared 2-core box halves
    every figure; this keeps a benchmark from starting in the middle of one.
    """
    t0 = time.perf_counter()
    while True:
        busy0, irq0 = _machine_busy()
        own0 = _tree_cpu_s()
        time.sleep(window_s)
        busy1, irq1 = _machine_busy()
        others = (busy1 - busy0 - (irq1 - irq0) - (_tree_cpu_s() - own0)) / window_s
        waited = time.perf_counter() - t0
        if others < threshold or waited >= max_wait_s:
            return {"waited_s": round(waited, 1), "others_cpus_busy": round(max(others, 0), 2)}


# stats and environment ----------------------------------------------------------------------
def pct(values: list[float], p: float) -> float:
    """Percentile with linear interpolation (numpy's default)."""
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def summarize_ms(seconds: list[float]) -> dict[str, float]:
    ms = [s * 1000.0 for s in seconds]
    return {
        "n": len(ms),
        "min_ms": round(min(ms), 3),
        "p50_ms": round(pct(ms, 50), 3),
        "p90_ms": round(pct(ms, 90), 3),
        "p99_ms": round(pct(ms, 99), 3),
        "max_ms": round(max(ms), 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements."""
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "n": len(values),
    }


def wait_until(
    predicate: Callable[[], Any], timeout: float, interval: float = 0.01, what: str = "condition"
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(interval)


def machine_info() -> dict[str, Any]:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = 0.0
    try:
        with open("/proc/meminfo") as f:
            mem_gib = int(f.readline().split()[1]) / 1024 / 1024
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_gib": round(mem_gib, 1),
        "kernel": platform.release(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions() -> dict[str, Any]:
    import billiard
    import celery
    import kombu
    import redis

    import celery_trigger

    try:
        out = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
        redis_server = out.stdout.split("v=")[1].split()[0]
    except (OSError, IndexError):
        redis_server = "?"
    commit, dirty = "?", None
    try:
        commit = (
            subprocess.run(
                ["git", "-C", REPO, "rev-parse", "HEAD"], capture_output=True, text=True
            ).stdout.strip()
            or "?"
        )
        status = subprocess.run(
            ["git", "-C", REPO, "status", "--porcelain", "--", "celery_trigger"],
            capture_output=True,
            text=True,
        ).stdout
        dirty = bool(status.strip())
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "billiard": getattr(billiard, "__version__", "?"),
        "redis_py": redis.__version__,
        "redis_server": redis_server,
        "celery_trigger": celery_trigger.__version__,
        "git_commit": commit,
        "library_has_uncommitted_changes": dirty,
    }
