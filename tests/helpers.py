"""Test helpers shared by every test package (no fixtures here: see the conftest files)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis

import celery_trigger as ct

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T], timeout: float = 15.0, interval: float = 0.01, message: str = ""
) -> T:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout}s")
        time.sleep(interval)


_CLIENTS: dict[tuple[str, int, int, str | None, bool], redis.Redis] = {}


def redis_client(store: Any) -> redis.Redis:
    """A plain redis-py client on a RedisStore's server (``Store.location``), for tests that
    inspect or corrupt keys directly; one shared client per server."""
    where = store.location()
    assert where is not None, "not a Redis store"
    ident = (where.host, where.port, where.db, where.password, where.ssl)
    if ident not in _CLIENTS:
        _CLIENTS[ident] = redis.Redis(
            host=where.host,
            port=where.port,
            db=where.db,
            password=where.password,
            ssl=where.ssl,
            decode_responses=True,
        )
    return _CLIENTS[ident]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_accepts(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for_status(run_id: str, *statuses: Any, timeout: float = 15.0) -> Any:
    """Wait until run ``run_id`` reaches one of ``statuses`` (default: any final status);
    returns the ``Run``. The failure says the status it is stuck in, and its error."""
    wanted = {ct.RunStatus(s) for s in statuses}

    def check() -> Any:
        run = ct.runs.retrieve(run_id)
        if (wanted and run.status in wanted) or (not wanted and run.is_completed):
            return run
        return None

    try:
        return wait_for(check, timeout=timeout)
    except AssertionError:
        run = ct.runs.retrieve(run_id)
        raise AssertionError(
            f"run {run_id} is {run.status}, wanted {wanted or 'final'} (error: {run.error!r})"
        ) from None
