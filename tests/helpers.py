"""Test helpers shared by every test package (no fixtures here: see the conftest files)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis

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
