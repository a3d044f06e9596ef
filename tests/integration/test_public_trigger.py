"""The public trigger route is least-privilege (issue 12 item 6, RT-6, SEMANTICS §12.2): a
trigger token sets only browser-safe options, its idempotency keys are scoped to its
subject, and every bad value is a 422 (item 7). A real uvicorn server, real Redis."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import celery_trigger as ct
from celery_trigger.realtime_http import realtime_app
from tests.helpers import redis_client

from .conftest import Engine
from .test_realtime_http import serving


@ct.task(id="pub-echo")
def pub_echo(payload: Any) -> Any:
    return payload


URL = "/api/v1/tasks/pub-echo/trigger"


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serving(realtime_app()) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(10.0)) as c:
        yield c


def _post(client: httpx.Client, token: str, body: Any) -> httpx.Response:
    return client.post(URL, json=body, headers={"Authorization": f"Bearer {token}"})


REFUSED = [
    ("queue", {"name": "pub-other", "concurrency_limit": 0}),
    ("queue", "pub-other"),
    ("concurrency_key", "everyone"),
    ("machine", "large-2x"),
    ("priority", 3600),
    ("max_attempts", 100),
    ("max_duration", 99999),
    ("version", "1"),
    ("region", "eu"),
]


@pytest.mark.parametrize("name, value", REFUSED, ids=[f"{n}={v}" for n, v in REFUSED])
def test_trigger_token_cannot_set_shared_state_options(
    engine: Engine, client: httpx.Client, name: str, value: Any
) -> None:
    """RT-6, issue 12 item 6: an option beyond the browser-safe set is 403, changes nothing
    (no queue limit stored, no run) and leaves the single-use token usable."""
    # Given a single-use trigger token
    token = ct.auth.create_trigger_public_token("pub-echo")
    # When it asks for an option that changes shared state
    refused = _post(client, token, {"payload": 1, "options": {name: value}})
    # Then it is refused naming the scope it would need, and nothing was written
    assert refused.status_code == 403, refused.text
    assert f"trigger:options:{name}" in refused.json()["error"]
    client_ = redis_client(engine.store)
    assert list(client_.scan_iter(f"{engine.prefix}:run:*")) == []
    assert list(client_.scan_iter(f"{engine.prefix}:queue:pub-other")) == []
    # And the token still triggers with browser-safe options
    ok = _post(client, token, {"payload": 1, "options": {"tags": ["web"], "delay": "1h"}})
    assert ok.status_code == 200, ok.text


def test_scopes_can_grant_an_option(engine: Engine, client: httpx.Client) -> None:
    """Issue 12 item 6: ``allow_options=["machine"]`` (scope ``trigger:options:machine``)
    permits that option only."""
    # Given a token allowed to choose the machine
    token = ct.auth.create_trigger_public_token(
        "pub-echo", multiple_use=True, allow_options=["machine"]
    )
    # When it sets the machine, and then the queue
    ok = _post(client, token, {"payload": 1, "options": {"machine": "large-1x"}})
    queue = _post(client, token, {"payload": 1, "options": {"queue": "pub-other"}})
    # Then the machine is applied and the queue still refused
    assert ok.status_code == 200, ok.text
    stored = redis_client(engine.store).hget(f"{engine.prefix}:run:{ok.json()['id']}", "machine")
    assert stored in ("large-1x", b"large-1x")
    assert queue.status_code == 403


def test_idempotency_key_is_scoped_to_the_token_subject(
    engine: Engine, client: httpx.Client
) -> None:
    """IDEM-2, issue 12 item 6: a browser's key never resolves to a run it did not make: not
    the server's run with the same raw key, not its 64-hex digest, not another subject's run;
    the same subject gets its own run back (is_cached)."""
    # Given a server-side run with key "order-1", and its digest
    server = pub_echo.trigger({"secret": "s3cr3t"}, idempotency_key="order-1")
    digest = redis_client(engine.store).hget(f"{engine.prefix}:run:{server.id}", "idem_key")
    digest = digest.decode() if isinstance(digest, bytes) else digest
    assert isinstance(digest, str) and len(digest) == 64
    alice = ct.auth.create_trigger_public_token("pub-echo", multiple_use=True, subject="alice")
    alice2 = ct.auth.create_trigger_public_token("pub-echo", subject="alice")
    bob = ct.auth.create_trigger_public_token("pub-echo", multiple_use=True, subject="bob")
    # When browsers send the same key (and the digest) through their tokens
    a1 = _post(client, alice, {"payload": "a", "options": {"idempotency_key": "order-1"}}).json()
    a2 = _post(client, alice2, {"payload": "a", "options": {"idempotency_key": "order-1"}}).json()
    b1 = _post(client, bob, {"payload": "b", "options": {"idempotency_key": "order-1"}}).json()
    raw = _post(client, bob, {"payload": "b", "options": {"idempotency_key": digest}}).json()
    # Then no browser got the server's run; alice's two tokens share one run; bob has his own
    assert server.id not in {a1["id"], b1["id"], raw["id"]}
    assert a1["is_cached"] is False and a2 == {**a2, "id": a1["id"], "is_cached": True}
    assert b1["id"] != a1["id"] and b1["is_cached"] is False
    assert ct.runs.retrieve(b1["id"]).payload == "b"


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


BAD_BODIES: list[tuple[str, bytes]] = [
    ("deep payload", b'{"payload": ' + _deep(5000).encode() + b"}"),
    ("moderately deep payload", b'{"payload": ' + _deep(400).encode() + b"}"),
    ("huge number", b'{"payload": 1e400}'),
    ("huge integer", b'{"payload": ' + b"9" * 5000 + b"}"),
    ("NaN", b'{"payload": NaN}'),
    ("colliding metadata keys", b'{"options": {"metadata": {"a": 1, "a": 2}}}'),
    ("delay 1e20", b'{"options": {"delay": 1e20}}'),
    ("ttl 1e20", b'{"options": {"ttl": 1e20}}'),
    ("key ttl 1e30", b'{"options": {"idempotency_key": "k", "idempotency_key_ttl": 1e30}}'),
    (
        "key ttl string",
        b'{"options": {"idempotency_key": "k", "idempotency_key_ttl": "99999999999d"}}',
    ),
    ("empty key", b'{"options": {"idempotency_key": ""}}'),
    ("tags type", b'{"options": {"tags": {"a": 1}}}'),
]


@pytest.mark.parametrize("body", [b for _, b in BAD_BODIES], ids=[n for n, _ in BAD_BODIES])
def test_bad_values_are_422(engine: Engine, client: httpx.Client, body: bytes) -> None:
    """D-13, issue 12 item 7: every bad value on the route is 422 (not 500), nothing is
    written and the single-use token is not spent."""
    # Given a single-use token
    token = ct.auth.create_trigger_public_token("pub-echo")
    auth = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    # When the body carries a bad value
    answer = client.post(URL, content=body, headers=auth)
    # Then it is 422 and the token still works
    assert answer.status_code == 422, answer.text
    assert list(redis_client(engine.store).scan_iter(f"{engine.prefix}:run:*")) == []
    assert client.post(URL, json={"payload": math.pi}, headers=auth).status_code == 200
