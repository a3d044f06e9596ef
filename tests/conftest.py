"""Shared fixtures: a private redis-server per test session, a unique key prefix per test.

Set ``CELERY_TRIGGER_TEST_REDIS_URL`` to use an existing server instead. Without Redis the
Redis-backed tests skip locally and fail when ``CI`` is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from tests.helpers import free_port, port_accepts, wait_for  # wait_for: re-exported


def _wait_for_port(port: int, timeout: float) -> None:
    wait_for(
        lambda: port_accepts(port),
        timeout=timeout,
        interval=0.02,
        message=f"redis-server on port {port} did not start",
    )


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    """URL of a Redis server private to this test session (db 0)."""
    url = os.environ.get("CELERY_TRIGGER_TEST_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed but CI is set")
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--databases",
            "64",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, 10)
        yield f"redis://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def key_prefix() -> str:
    """A key prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:10]}"
