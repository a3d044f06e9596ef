"""Flower, for real (issue 13 item 4): a Flower process on its own port reads the test
Redis broker's events while a real worker runs trigger-published runs; the test reads
Flower's HTTP API (``/api/tasks``, ``/api/task/info/<id>``). Task ids start with ``fw-``.

Flower subscribes to events when it starts (Redis events are pub/sub: nothing is replayed),
so the fixture waits until Flower has seen a probe run before the test starts.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import celery_trigger as ct

from .conftest import Engine, wait_for, wait_for_status


@ct.task(id="fw-echo")
def fw_echo(payload: dict) -> str:
    return f"hello {payload['name']}"


@ct.task(id="fw-fails", retry={"max_attempts": 1})
def fw_fails(payload: dict) -> None:
    raise ValueError(f"bad row {payload['row']}")


@ct.task(id="fw-blocks")
def fw_blocks(payload: dict) -> Any:
    return ct.wait.for_token(payload["token"]).unwrap()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Flower:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=5)
        return response.json() if response.status_code == 200 else None

    def task(self, task_id: str) -> dict[str, Any] | None:
        return self.get(f"/api/task/info/{task_id}")  # type: ignore[no-any-return]

    def task_in(self, task_id: str, *states: str) -> dict[str, Any]:
        """Wait until Flower shows ``task_id`` in one of ``states``."""

        def check() -> dict[str, Any] | None:
            info = self.task(task_id)
            return info if info is not None and info.get("state") in states else None

        return wait_for(check, timeout=20, message=f"Flower never showed {task_id} {states}")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def flower_process(redis_server: str) -> Iterator[str]:
    port = _free_port()
    env = {**os.environ, "FLOWER_UNAUTHENTICATED_API": "true"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", f"--broker={redis_server}/0", "flower",
         f"--port={port}", "--address=127.0.0.1", "--purge_offline_workers=60"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthcheck", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy, timeout=30, message="Flower did not start")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def flower(flower_process: str, make_engine: Any) -> Iterator[tuple[Flower, Engine]]:
    """Flower and an engine whose worker sends task events; Flower has seen a probe run."""
    engine = make_engine()
    engine.app.conf.worker_send_task_events = True
    client = Flower(flower_process)
    with engine.worker(concurrency=3):

        def probe_seen() -> bool:
            handle = fw_echo.trigger({"name": "probe"})
            wait_for_status(handle.id)
            return wait_for(lambda: client.task(handle.id), timeout=2, message="") is not None

        wait_for(_quietly(probe_seen), timeout=30, message="Flower never saw a run")
        yield client, engine


def _quietly(check: Any) -> Any:
    def run() -> Any:
        try:
            return check()
        except AssertionError:
            return None

    return run


def test_flower_shows_a_run_by_task_payload_and_run_fields(
    flower: tuple[Flower, Engine],
) -> None:
    """Issue 13 §4: name, payload preview as args, run id/tags/key/attempt as kwargs; the
    search finds the run by tag."""
    client, _ = flower
    tag = f"user-{uuid.uuid4().hex[:8]}"
    # Given a run triggered with a tag and an idempotency key
    handle = fw_echo.trigger({"name": "ada"}, tags=[tag], idempotency_key="fw-key-1")
    wait_for_status(handle.id)
    # Then Flower shows it as a succeeded fw-echo call with the payload and the run fields
    info = client.task_in(handle.id, "SUCCESS")
    assert info["name"] == "fw-echo"
    assert info["args"] == '{"name":"ada"}'
    assert f"'run_id': '{handle.id}'" in info["kwargs"]
    assert tag in info["kwargs"] and "'attempt': 1" in info["kwargs"]
    assert "fw-key-1" in info["kwargs"]
    # And Flower's search finds it by its tag
    found = client.get("/api/tasks", search=tag)
    assert list(found) == [handle.id]


def test_flower_shows_a_parked_run_as_retry_then_success(flower: tuple[Flower, Engine]) -> None:
    """Issue 13 §4, STATUS-3: RETRY with the wait reason, then SUCCESS under the same id."""
    client, _ = flower
    # Given a run parked on a token
    token = ct.wait.create_token(timeout="1h")
    handle = fw_blocks.trigger({"token": token.id})
    # Then Flower shows RETRY with the wait reason
    parked = client.task_in(handle.id, "RETRY")
    assert "waiting for token" in (parked.get("exception") or ""), parked.get("exception")
    # When the token is completed, the same id comes back and succeeds
    ct.wait.complete_token(token, {"ok": True})
    wait_for_status(handle.id)
    done = client.task_in(handle.id, "SUCCESS")
    assert done["retries"] == 1 and "ok" in (done.get("result") or "")


def test_flower_shows_a_failure_with_its_error(flower: tuple[Flower, Engine]) -> None:
    """Issue 13 §4: a failed run shows FAILURE with the user's error name and message."""
    client, _ = flower
    handle = fw_fails.trigger({"row": 3})
    wait_for_status(handle.id)
    info = client.task_in(handle.id, "FAILURE")
    assert "ValueError" in info["exception"] and "bad row 3" in info["exception"]


def test_flower_shows_a_cancelled_run_as_revoked(flower: tuple[Flower, Engine]) -> None:
    """Issue 13 §4: a cancelled (parked) run shows REVOKED."""
    client, _ = flower
    # Given a run parked on a token
    token = ct.wait.create_token(timeout="1h")
    handle = fw_blocks.trigger({"token": token.id})
    client.task_in(handle.id, "RETRY")
    # When it is cancelled
    ct.runs.cancel(handle.id)
    # Then Flower shows it REVOKED
    client.task_in(handle.id, "REVOKED")
