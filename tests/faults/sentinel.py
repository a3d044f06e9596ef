"""A Redis Sentinel set-up for the fault suite: a primary, a replica and three sentinels
(``redis-server --sentinel`` with a generated config), each on a free port of 127.0.0.1."""

from __future__ import annotations

import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.helpers import free_port, port_accepts, wait_for

MASTER = "mymaster"


class SentinelCluster:
    def __init__(self, tmp: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.skip("redis-server is not installed")
        self.binary, self.dir = binary, tmp / "sentinel"
        self.dir.mkdir()
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.primary = self._server()
        self.replica = self._server("--replicaof", "127.0.0.1", str(self.primary))
        self.sentinels = [self._sentinel(i) for i in range(3)]
        wait_for(self._ready, timeout=20, interval=0.1, message="sentinels did not converge")

    @property
    def url(self) -> str:
        """The store URL: ``sentinel://h:p,h:p,h:p/mymaster``."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinels)
        return f"sentinel://{hosts}/{MASTER}"

    def _spawn(self, port: int, *args: str) -> int:
        self.procs[port] = subprocess.Popen(
            [self.binary, *args],
            stdout=(self.dir / f"{port}.log").open("wb"),
            stderr=subprocess.DEVNULL,
        )
        wait_for(lambda: port_accepts(port), timeout=10, message=f"port {port} did not open")
        return port

    def _server(self, *extra: str) -> int:
        port = free_port()
        data = self.dir / f"redis-{port}"
        data.mkdir()
        args = ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--repl-diskless-sync-delay", "0"]  # a replica syncs at once, not after 5 s
        return self._spawn(port, *args, "--dir", str(data), *extra)

    def _sentinel(self, index: int) -> int:
        port = free_port()
        conf = self.dir / f"sentinel-{index}.conf"  # sentinel rewrites its config: a file each
        conf.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {self.primary} 2\n"
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 5000\n"
            f"sentinel parallel-syncs {MASTER} 1\n"
        )
        return self._spawn(port, str(conf), "--sentinel")

    def _sentinel_view(self, port: int) -> dict[str, Any]:
        client = redis.Redis(port=port, decode_responses=True, socket_timeout=1)
        try:
            return dict(client.sentinel_master(MASTER))
        finally:
            client.close()

    def _ready(self) -> bool:
        """The replica is in sync and every sentinel knows it and the two other sentinels."""
        replica = redis.Redis(port=self.replica, decode_responses=True, socket_timeout=1)
        try:
            if replica.info("replication").get("master_link_status") != "up":
                return False
        finally:
            replica.close()
        views = [self._sentinel_view(port) for port in self.sentinels]
        return all(v["num-slaves"] >= 1 and v["num-other-sentinels"] >= 2 for v in views)

    def master_port(self) -> int:
        return int(self._sentinel_view(self.sentinels[0])["port"])

    def kill_primary(self) -> None:
        proc = self.procs[self.primary]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)
