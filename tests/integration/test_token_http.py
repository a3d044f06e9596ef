"""Completing waitpoint tokens over HTTP (SEMANTICS §7.2 "HTTP completion", WAIT-12).

The WSGI app is served by ``wsgiref`` on 127.0.0.1 in a thread and called over real HTTP with
httpx; ``trigger_base_url`` points at that server, so ``token.url`` is used as is. The ASGI app
is called directly with a minimal scope/receive/send harness (no ASGI server is installed).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx
import jwt
import pytest

import celery_trigger as ct
from celery_trigger import _setup
from celery_trigger._engine.tokens import callback_hash
from celery_trigger._store.redis import RedisStore
from celery_trigger.http import asgi_app, wsgi_app

from .conftest import Engine, wait_for, wait_for_status


@ct.task(id="th-await-token")
def th_await_token(payload: dict[str, Any]) -> dict[str, Any]:
    result = ct.wait.for_token(payload["token"])
    return {"ok": result.ok, "output": result.output}


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean (the default logs every request to stderr)."""


@dataclass
class Served:
    engine: Engine
    url: str

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(url, timeout=10, **kwargs)


@pytest.fixture
def serve(make_engine: Callable[..., Engine]) -> Iterator[Callable[..., Served]]:
    """Start ``wsgi_app()`` on a free port, then an engine whose base URL is that server."""
    servers: list[tuple[WSGIServer, threading.Thread]] = []

    def start(**overrides: Any) -> Served:
        server = make_server("127.0.0.1", 0, wsgi_app(), handler_class=_QuietHandler)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        servers.append((server, thread))
        url = f"http://127.0.0.1:{server.server_port}"
        return Served(make_engine(base_url=url, **overrides), url)

    yield start
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _status(token_id: str) -> str:
    return ct.wait.retrieve_token(token_id).status


# --- callback URL (WSGI over real HTTP) ------------------------------------------------------


def test_post_to_token_url_resumes_parked_run_with_body(serve: Callable[..., Served]) -> None:
    """WAIT-12, WAIT-9: POST token.url with a JSON body completes the token with that body and
    the run parked on it resumes with it as output."""
    srv = serve()
    token = ct.wait.create_token(timeout="1h")
    with srv.engine.worker(concurrency=1):
        # Given a run parked on the token
        handle = th_await_token.trigger({"token": token.id})
        wait_for_status(handle.id, "WAITING")
        # When the token's URL is POSTed with a JSON body
        response = srv.post(token.url, json={"status": "approved"})
        # Then the request succeeds and the run resumes with the body as the output
        assert response.status_code == 200
        assert response.json() == {"success": True}
        assert response.headers["content-type"] == "application/json"
        run = wait_for_status(handle.id, timeout=20)
    assert run.status == ct.RunStatus.COMPLETED, run.error
    assert run.output == {"ok": True, "output": {"status": "approved"}}


@pytest.mark.parametrize("body", [b"", b"not json", b'{"a": ', b"NaN"])
def test_post_with_empty_or_non_json_body_completes_with_empty_object(
    serve: Callable[..., Served], body: bytes
) -> None:
    """WAIT-12: a missing or non-JSON body completes the token with ``{}``."""
    srv = serve()
    # Given a waiting token
    token = ct.wait.create_token()
    # When its URL is POSTed with an empty or malformed body
    response = srv.post(token.url, content=body)
    # Then the token is completed with {}
    assert response.status_code == 200, response.text
    record = ct.wait.retrieve_token(token.id)
    assert (record.status, record.output) == ("COMPLETED", {})


def test_post_with_json_scalar_body_completes_with_that_value(serve: Callable[..., Served]) -> None:
    """§7.2: the JSON request body *is* the output, whatever JSON value it is."""
    # Given a waiting token
    srv = serve()
    token = ct.wait.create_token()
    # When its URL is POSTed with a JSON array
    response = srv.post(token.url, content=b'[1, "two", null]')
    # Then the array is the output
    assert response.status_code == 200
    assert ct.wait.retrieve_token(token.id).output == [1, "two", None]


def test_post_with_tampered_hash_is_401_and_token_stays_waiting(
    serve: Callable[..., Served],
) -> None:
    """WAIT-12: a wrong hash is refused with 401 and changes nothing."""
    srv = serve()
    # Given a waiting token and its URL with one hash character changed
    token = ct.wait.create_token()
    last = token.url[-1]
    tampered = token.url[:-1] + ("0" if last != "0" else "1")
    # When the tampered URL is POSTed
    response = srv.post(tampered, json={"status": "approved"})
    # Then it is refused and the token is still waiting
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert "error" in response.json()
    assert _status(token.id) == "WAITING"


def test_second_post_returns_success_and_keeps_first_output(serve: Callable[..., Served]) -> None:
    """§7.2, WAIT-10 over HTTP: already completed ⇒ 200 {"success": true}, no change."""
    # Given a token completed over HTTP
    srv = serve()
    token = ct.wait.create_token()
    assert srv.post(token.url, json={"n": 1}).status_code == 200
    # When the URL is POSTed again with other data
    response = srv.post(token.url, json={"n": 2})
    # Then it succeeds and the first output stays
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert ct.wait.retrieve_token(token.id).output == {"n": 1}


def test_post_to_timed_out_token_returns_success_and_stays_timed_out(
    serve: Callable[..., Served],
) -> None:
    """§7.2, WAIT-10 over HTTP: a timed-out token answers 200 and stays TIMED_OUT."""
    srv = serve()
    # Given a token the worker's timer service has timed out
    token = ct.wait.create_token(timeout="1s")
    with srv.engine.worker(concurrency=1):
        wait_for(lambda: _status(token.id) == "TIMED_OUT", timeout=10)
    # When its URL is POSTed
    response = srv.post(token.url, json={"late": True})
    # Then the answer is success and nothing changed
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert _status(token.id) == "TIMED_OUT"


def test_post_without_content_length_is_411(serve: Callable[..., Served]) -> None:
    """§7.2: a callback POST without Content-Length is refused with 411."""
    # Given a served app and a waiting token
    serve()
    token = ct.wait.create_token()
    parts = urlsplit(token.url)
    # When the URL is POSTed with no Content-Length header at all
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.putrequest("POST", parts.path)
        conn.endheaders()
        response = conn.getresponse()
        body = json.loads(response.read())
    finally:
        conn.close()
    # Then it is refused and the token is untouched
    assert response.status == 411 and "error" in body
    assert _status(token.id) == "WAITING"


def test_post_above_payload_limit_is_413(serve: Callable[..., Served]) -> None:
    """§7.2: a body above ``trigger_max_payload_bytes`` is refused with 413."""
    srv = serve(max_payload_bytes=1024)
    token = ct.wait.create_token()
    # When a body one byte over the limit is POSTed
    response = srv.post(token.url, content=b"x" * 1025)
    # Then it is refused; a body at the limit is accepted
    assert response.status_code == 413
    assert _status(token.id) == "WAITING"
    assert srv.post(token.url, content=b'"' + b"y" * 1022 + b'"').status_code == 200


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_non_post_on_token_url_is_405_with_allow_post(
    serve: Callable[..., Served], method: str
) -> None:
    """§7.2: non-POST methods on the callback URL answer 405 with ``Allow: POST``."""
    # Given a served app and a waiting token
    serve()
    token = ct.wait.create_token()
    # When its URL is called with another method
    response = httpx.request(method, token.url, timeout=10)
    # Then the answer is 405, Allow: POST, and the token is untouched
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert _status(token.id) == "WAITING"


def test_unknown_token_is_404_and_unknown_path_is_404(serve: Callable[..., Served]) -> None:
    """§7.2: a correctly signed URL of a token that does not exist answers 404."""
    # Given a correctly signed callback URL for a token id that was never created
    srv = serve()
    secret = srv.engine.trigger.settings.secret_key
    missing = "waitpoint_doesnotexist0000"
    url = f"{srv.url}/api/v1/waitpoints/tokens/{missing}/callback/{callback_hash(secret, missing)}"
    # When it (and paths the app does not serve) are requested, Then each answers 404
    assert srv.post(url, json={}).status_code == 404
    assert srv.post(f"{srv.url}/api/v1/waitpoints/tokens", json={}).status_code == 404
    assert httpx.get(f"{srv.url}/", timeout=10).status_code == 404


# --- /complete with a bearer token (WSGI over real HTTP) -------------------------------------


def _complete_url(srv: Served, token_id: str) -> str:
    return f"{srv.url}/api/v1/waitpoints/tokens/{token_id}/complete"


def test_complete_with_the_tokens_public_access_token(serve: Callable[..., Served]) -> None:
    """§7.2: POST .../complete with {"data": ...} and the token's public access token."""
    # Given a waiting token with its public access token
    srv = serve()
    token = ct.wait.create_token()
    assert token.public_access_token
    # When the complete route is called with the token's own access token
    response = srv.post(
        _complete_url(srv, token.id),
        json={"data": {"a": 1}},
        headers={"Authorization": f"Bearer {token.public_access_token}"},
    )
    # Then the token is completed with the data, and CORS is open for browsers
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert response.headers["access-control-allow-origin"] == "*"
    assert ct.wait.retrieve_token(token.id).output == {"a": 1}


def test_complete_with_global_scope_or_secret_key(serve: Callable[..., Served]) -> None:
    """§7.2, §12.2: a token with ``write:waitpoints`` or the secret key itself may complete."""
    # Given two waiting tokens, a public token for all waitpoints and the secret key
    srv = serve()
    first, second = ct.wait.create_token(), ct.wait.create_token()
    scoped = ct.auth.create_public_token(scopes={"write": {"waitpoints": True}})
    secret = srv.engine.trigger.settings.secret_key
    # When each completes one token
    r1 = srv.post(
        _complete_url(srv, first.id),
        json={"data": 1},
        headers={"Authorization": f"Bearer {scoped}"},
    )
    r2 = srv.post(
        _complete_url(srv, second.id),
        json={"data": 2},
        headers={"Authorization": f"bearer {secret}"},
    )
    # Then both are completed with their data
    assert (r1.status_code, r2.status_code) == (200, 200)
    assert [ct.wait.retrieve_token(t.id).output for t in (first, second)] == [1, 2]


def _bad_auth_headers(secret: str, other_token: str) -> dict[str, dict[str, str]]:
    expired = jwt.encode(
        {"scopes": ["write:waitpoints"], "exp": int(time.time()) - 60}, secret, algorithm="HS256"
    )
    forged = jwt.encode(
        {"scopes": ["write:waitpoints"], "exp": int(time.time()) + 60},
        "another-secret-0123456789abcdef0123456789",
        algorithm="HS256",
    )
    read_only = ct.auth.create_public_token(scopes=["read:waitpoints"])
    return {
        "missing": {},
        "not-bearer": {"Authorization": f"Basic {secret}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "forged": {"Authorization": f"Bearer {forged}"},
        "other-token": {"Authorization": f"Bearer {other_token}"},
        "read-scope": {"Authorization": f"Bearer {read_only}"},
    }


def test_complete_with_bad_or_missing_auth_is_401(serve: Callable[..., Served]) -> None:
    """§7.2, §12.2: no bearer, a bad signature, an expired token or a token scoped to another
    waitpoint are refused with 401 and change nothing."""
    # Given a waiting token and a set of bad Authorization headers
    srv = serve()
    token, other = ct.wait.create_token(), ct.wait.create_token()
    assert other.public_access_token
    cases = _bad_auth_headers(srv.engine.trigger.settings.secret_key, other.public_access_token)
    # When each is used on the complete route, Then each is refused and nothing changes
    for name, headers in cases.items():
        response = srv.post(_complete_url(srv, token.id), json={"data": name}, headers=headers)
        assert response.status_code == 401, name
        assert "error" in response.json(), name
    assert _status(token.id) == "WAITING"


def test_complete_with_a_body_that_is_not_an_object_is_400(serve: Callable[..., Served]) -> None:
    """The complete route needs a JSON object body ``{"data": ...}``."""
    # Given a waiting token and its access token
    srv = serve()
    token = ct.wait.create_token()
    auth = {"Authorization": f"Bearer {token.public_access_token}"}
    # When the body is not a JSON object, Then the answer is 400 and nothing changes
    for body in (b"[1]", b"nope", b""):
        response = srv.post(_complete_url(srv, token.id), content=body, headers=auth)
        assert response.status_code == 400, body
    assert _status(token.id) == "WAITING"


def test_complete_route_answers_cors_preflight(serve: Callable[..., Served]) -> None:
    """§7.2: CORS is enabled on the complete route (browser preflight)."""
    # Given a waiting token
    srv = serve()
    token = ct.wait.create_token()
    # When a browser sends its preflight request
    response = httpx.options(_complete_url(srv, token.id), timeout=10)
    # Then cross-origin POSTs with an Authorization header are allowed
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "authorization" in response.headers["access-control-allow-headers"]


# --- ASGI -------------------------------------------------------------------------------------


def call_asgi(
    app: Any,
    method: str,
    path: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    chunks: Sequence[bytes] = (b"",),
    root_path: str = "",
) -> tuple[int, dict[str, str], Any]:
    """Call an ASGI app once; return (status, headers, decoded JSON body)."""
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "root_path": root_path,
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers],
    }
    asyncio.run(app(scope, receive, send))
    start, body = sent
    out_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], out_headers, json.loads(body["body"]) if body["body"] else None


def _path(url: str) -> str:
    return urlsplit(url).path


def test_asgi_complete_resumes_parked_run(engine: Engine) -> None:
    """§7.2, WAIT-9: the ASGI app's complete route resumes a run parked on the token."""
    # Given an ASGI app mounted under /trigger and a run parked on a token
    app = asgi_app(engine=engine.trigger, prefix="/trigger")
    token = ct.wait.create_token()
    body = json.dumps({"data": {"approved": True}}).encode()
    with engine.worker(concurrency=1):
        handle = th_await_token.trigger({"token": token.id})
        wait_for_status(handle.id, "WAITING")
        # When the complete route receives the data in two body chunks
        status, headers, reply = call_asgi(
            app,
            "POST",
            f"/trigger/api/v1/waitpoints/tokens/{token.id}/complete",
            headers=[
                ("Authorization", f"Bearer {token.public_access_token}"),
                ("Content-Length", str(len(body))),
            ],
            chunks=[body[:5], body[5:]],
        )
        # Then it succeeds and the run resumes with the data
        assert (status, reply) == (200, {"success": True})
        assert headers["content-type"] == "application/json"
        run = wait_for_status(handle.id, timeout=20)
    assert run.output == {"ok": True, "output": {"approved": True}}


def test_asgi_callback_rules(make_engine: Callable[..., Engine]) -> None:
    """WAIT-12 and §7.2 via ASGI: body is the output, bad hash 401, no length 411, streamed
    body over the limit 413 (even under a lying Content-Length), GET 405, root_path honoured."""
    # Given an engine with a 64-byte payload limit and the ASGI app using the installed engine
    make_engine(max_payload_bytes=64)
    app = asgi_app()
    token = ct.wait.create_token()
    path = _path(token.url)
    length = [("Content-Length", "10")]
    # When bad requests arrive, Then each gets its status and the token stays WAITING
    assert call_asgi(app, "POST", path[:-1] + "x", headers=length, chunks=[b"{}"])[0] == 401
    assert call_asgi(app, "POST", path, chunks=[b"{}"])[0] == 411
    assert call_asgi(app, "POST", path, headers=length, chunks=[b"1" * 40, b"2" * 40])[0] == 413
    status, headers, _ = call_asgi(app, "GET", path)
    assert (status, headers["allow"]) == (405, "POST")
    status, headers, _ = call_asgi(app, "GET", f"/mnt{path}", root_path="/mnt")
    assert (status, headers["allow"]) == (405, "POST")
    assert ct.wait.retrieve_token(token.id).status == "WAITING"
    # When a good request arrives, Then its body is the output
    body = b'{"status": "approved"}'
    status, _, reply = call_asgi(
        app, "POST", path, headers=[("Content-Length", "22")], chunks=[body]
    )
    assert (status, reply) == (200, {"success": True})
    assert ct.wait.retrieve_token(token.id).output == {"status": "approved"}


def test_store_unreachable_is_503(engine: Engine) -> None:
    """A store error while completing answers 503 instead of raising."""
    # Given an engine whose Redis cannot be reached (nothing listens on port 1)
    trigger = engine.trigger
    down = ct.Trigger(
        engine.app, trigger.settings, RedisStore("redis://127.0.0.1:1/0"), trigger.broker
    )
    token_id = "waitpoint_unreachable000"
    path = (
        f"/api/v1/waitpoints/tokens/{token_id}/callback/"
        f"{callback_hash(trigger.settings.secret_key, token_id)}"
    )
    # When a valid callback arrives
    status, _, reply = call_asgi(
        asgi_app(engine=down), "POST", path, headers=[("Content-Length", "2")], chunks=[b"{}"]
    )
    # Then the answer is 503 with a JSON error
    down.store.close()
    assert status == 503 and "error" in reply


def test_before_setup_the_app_answers_503() -> None:
    """The app may be created before ``ct.setup``; until then requests answer 503."""
    # Given no installed engine and an app created anyway
    _setup.reset()
    app = asgi_app()
    # When a request arrives
    status, _, reply = call_asgi(
        app,
        "POST",
        "/api/v1/waitpoints/tokens/w/complete",
        headers=[("Content-Length", "2")],
        chunks=[b"{}"],
    )
    # Then it is answered with 503, not an exception
    assert status == 503 and "setup" in reply["error"]
