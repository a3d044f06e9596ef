"""Complete waitpoint tokens over HTTP (SEMANTICS §7.2): a WSGI and an ASGI callable.

Routes (under ``prefix``):
* ``POST /api/v1/waitpoints/tokens/<id>/callback/<hash>``: the ``url`` of
  ``wait.create_token``. The hash (HMAC-SHA256 of the id with ``trigger_secret_key``)
  authenticates; the JSON body *is* the output (a missing or non-JSON body completes with ``{}``).
* ``POST /api/v1/waitpoints/tokens/<id>/complete``: body ``{"data": ...}`` and
  ``Authorization: Bearer <token>``: the token's ``public_access_token`` (scope
  ``write:waitpoints:<id>``), a public token with ``write:waitpoints``, or the secret key.
  CORS is open on this route so browsers can call it.

First completion wins: a completed or timed-out token answers 200 ``{"success": true}``
unchanged. Errors are JSON ``{"error": ...}``: 401 bad hash or auth, 404 unknown path or token,
405 other methods, 411 no ``Content-Length``, 413 body above ``trigger_max_payload_bytes``, 503
store unreachable or no ``setup``. Invariants: no web framework; nothing a client sends makes
the callable raise; the engine is looked up per request (the app may exist before ``setup``).

Mounting at ``/trigger`` (set ``trigger_base_url = "https://example.com/trigger"`` so token
URLs point here)::

    from celery_trigger.http import asgi_app, wsgi_app

    # Flask (WSGI), with werkzeug.middleware.dispatcher.DispatcherMiddleware
    flask_app.wsgi_app = DispatcherMiddleware(flask_app.wsgi_app, {"/trigger": wsgi_app()})

    # Django (wsgi.py)
    django_app, tokens_app = get_wsgi_application(), wsgi_app(prefix="/trigger")
    def application(environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/trigger/"):
            return tokens_app(environ, start_response)
        return django_app(environ, start_response)

    # FastAPI / Starlette (ASGI)
    fastapi_app.mount("/trigger", asgi_app())
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import jwt

from . import auth
from ._engine import tokens as _tokens
from ._engine.engine import current
from .errors import ConfigurationError, StoreUnavailableError, TokenNotFoundError

logger = logging.getLogger("celery_trigger.http")

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ASGIApp = Callable[
    [
        dict[str, Any],
        Callable[[], Awaitable[dict[str, Any]]],
        Callable[[dict[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]

_ROUTES = re.compile(r"/api/v1/waitpoints/tokens/([^/]{1,200})/(?:callback/([^/]{1,200})|complete)")
#: Unread request bodies up to this size are read and dropped before an early error response.
_DRAIN_BYTES = 64 * 1024
_CORS = (("access-control-allow-origin", "*"),)
_PREFLIGHT = (
    *_CORS,
    ("access-control-allow-methods", "POST, OPTIONS"),
    ("access-control-allow-headers", "authorization, content-type"),
)


@dataclass(frozen=True)
class _Response:
    status: int
    body: Any
    headers: tuple[tuple[str, str], ...] = ()

    def encoded(self) -> tuple[bytes, list[tuple[str, str]]]:
        data = json.dumps(self.body, separators=(",", ":")).encode()
        return data, [
            ("content-type", "application/json"),
            ("content-length", str(len(data))),
            *self.headers,
        ]


def _error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> _Response:
    return _Response(status, {"error": message}, headers)


@dataclass(frozen=True)
class _Plan:
    """A request that passed routing, auth and size checks; only its body is missing."""

    engine: Any
    token_id: str
    callback: bool
    length: int
    limit: int
    extra: tuple[tuple[str, str], ...]


def _prepare(
    engine: Any, prefix: str, method: str, path: str, headers: Mapping[str, str]
) -> _Plan | _Response:
    """Route, authenticate and size-check a request (headers only)."""
    if not path.startswith(prefix) or (match := _ROUTES.fullmatch(path[len(prefix) :])) is None:
        return _error(404, "Not found")
    token_id, digest = match.group(1), match.group(2)
    callback = digest is not None
    extra = () if callback else _CORS
    if method == "OPTIONS" and not callback:
        return _Response(200, {}, _PREFLIGHT)
    if method != "POST":
        allow = "POST" if callback else "POST, OPTIONS"
        return _error(405, "Method not allowed", (*extra, ("allow", allow)))
    try:
        engine = engine if engine is not None else current()
    except ConfigurationError:
        return _error(503, "celery_trigger.setup(app) has not been called", extra)
    secret = engine.settings.secret_key
    if not secret:
        return _error(401, "trigger_secret_key is not set: cannot authenticate", extra)
    if callback:
        expected = _tokens.callback_hash(secret, token_id).encode()
        if not hmac.compare_digest(expected, digest.encode("utf-8", "replace")):
            return _error(401, "Invalid hash")
    elif problem := _check_bearer(headers.get("authorization", ""), secret, token_id):
        return _error(401, problem, extra)
    raw_length = headers.get("content-length", "").strip()
    if not raw_length:
        return _error(411, "Content-Length is required", extra)
    if not (raw_length.isascii() and raw_length.isdigit()):
        return _error(400, "Invalid Content-Length", extra)
    limit = int(engine.settings.max_payload_bytes)
    if int(raw_length) > limit:
        return _error(413, f"Request body is larger than {limit} bytes", extra)
    return _Plan(engine, token_id, callback, int(raw_length), limit, extra)


def _check_bearer(header: str, secret: str, token_id: str) -> str | None:
    """Why the ``Authorization`` header does not allow completing ``token_id`` (None: it does)."""
    scheme, _, credential = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not (credential := credential.strip()):
        return "Missing Authorization: Bearer <token>"
    if hmac.compare_digest(credential.encode("utf-8", "replace"), secret.encode()):
        return None
    try:
        claims = auth.decode(credential, secret)
    except jwt.InvalidTokenError as exc:
        return f"Invalid access token: {exc}"
    scopes = claims.get("scopes")
    if "exp" not in claims or not isinstance(scopes, list):
        return "Invalid access token: no expiry or scopes"
    if f"write:waitpoints:{token_id}" in scopes or "write:waitpoints" in scopes:
        return None
    return f"Access token lacks the write:waitpoints:{token_id} scope"


def _reject(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity: Python accepts them, JSON not


def _parse(body: bytes) -> tuple[bool, Any]:
    """(True, value) for a JSON body; (False, None) for an empty or malformed one."""
    if not body.strip():
        return False, None
    try:
        return True, json.loads(body, parse_constant=_reject)
    except (ValueError, RecursionError):
        return False, None


def _finish(plan: _Plan, body: bytes) -> _Response:
    """Complete the token with the request body; map every failure to a response."""
    parsed, value = _parse(body)
    if plan.callback:
        data = value if parsed else {}
    elif parsed and isinstance(value, dict):
        data = value.get("data")
    else:
        return _error(400, 'Body must be a JSON object like {"data": ...}', plan.extra)
    try:
        _tokens.complete(plan.engine, plan.token_id, data)
    except TokenNotFoundError:
        return _error(404, f"Waitpoint token {plan.token_id} not found", plan.extra)
    except UnicodeError:  # JSON strings with lone surrogates cannot be stored as UTF-8
        return _error(400, "Body is not valid UTF-8 JSON", plan.extra)
    except StoreUnavailableError as exc:
        logger.warning("completing %s failed: %s", plan.token_id, exc)
        return _error(503, "Store unavailable, try again", plan.extra)
    except Exception:
        logger.exception("completing waitpoint token %s failed", plan.token_id)
        return _error(500, "Internal error", plan.extra)
    return _Response(200, {"success": True}, plan.extra)


def _normalize_prefix(prefix: str) -> str:
    prefix = prefix.rstrip("/")
    return prefix if not prefix or prefix.startswith("/") else f"/{prefix}"


def _safe_prepare(
    engine: Any, prefix: str, method: str, path: str, headers: Mapping[str, str]
) -> _Plan | _Response:
    try:
        return _prepare(engine, prefix, method.upper(), path, headers)
    except Exception:
        logger.exception("celery_trigger.http failed on %s %s", method, path)
        return _error(500, "Internal error")


def wsgi_app(*, engine: Any = None, prefix: str = "") -> WSGIApp:
    """A WSGI callable serving the token routes under ``prefix``.

    Example: ``wsgiref.simple_server.make_server("", 8000, ct.http.wsgi_app()).serve_forever()``.
    """
    prefix = _normalize_prefix(prefix)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        headers = {
            k[5:].replace("_", "-").lower(): str(v)
            for k, v in environ.items()
            if k.startswith("HTTP_")
        }
        headers["content-length"] = str(environ.get("CONTENT_LENGTH") or "")
        plan = _safe_prepare(
            engine,
            prefix,
            str(environ.get("REQUEST_METHOD", "GET")),
            str(environ.get("PATH_INFO") or "/"),
            headers,
        )
        if isinstance(plan, _Response):
            response, length = plan, headers["content-length"]
            if length.isdigit() and int(length) <= _DRAIN_BYTES:  # else wsgiref resets
                _read_wsgi(environ, int(length))
        else:
            body = _read_wsgi(environ, plan.length)
            response = (
                _finish(plan, body)
                if body is not None
                else _error(400, "Could not read the request body", plan.extra)
            )
        data, out_headers = response.encoded()
        status = HTTPStatus(response.status)
        start_response(f"{status.value} {status.phrase}", out_headers)
        return [data]

    return app


def _read_wsgi(environ: dict[str, Any], length: int) -> bytes | None:
    """Exactly ``length`` bytes of body (fewer if the client stops); None on a read error."""
    chunks: list[bytes] = []
    try:
        while length > 0 and (chunk := environ["wsgi.input"].read(min(length, 65536))):
            chunks.append(chunk)
            length -= len(chunk)
    except (OSError, ValueError):
        return None
    return b"".join(chunks)


async def _read_asgi(receive: Callable[[], Awaitable[dict[str, Any]]], limit: int) -> bytes | None:
    """The body, or None once above ``limit``; ConnectionAbortedError if the client left."""
    body, more = bytearray(), True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        body.extend(message.get("body", b""))
        if len(body) > limit:
            return None
        more = bool(message.get("more_body", False))
    return bytes(body)


def asgi_app(*, engine: Any = None, prefix: str = "") -> ASGIApp:
    """An ASGI 3 callable serving the token routes under ``prefix`` (store calls in a thread).

    Example: ``uvicorn.run(ct.http.asgi_app(), port=8000)``.
    """
    prefix = _normalize_prefix(prefix)

    async def app(
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[dict[str, Any]]],
        send: Callable[[dict[str, Any]], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                event = str((await receive())["type"]).rpartition(".")[2]
                await send({"type": f"lifespan.{event}.complete"})
                if event == "shutdown":
                    return
        if scope["type"] != "http":
            return await send({"type": "websocket.close", "code": 1000})
        path, root = str(scope.get("path") or "/"), str(scope.get("root_path") or "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        headers = {
            bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
            for k, v in scope.get("headers", [])
        }
        plan = _safe_prepare(engine, prefix, str(scope.get("method", "GET")), path, headers)
        if isinstance(plan, _Response):
            response = plan
        else:
            try:
                body = await _read_asgi(receive, plan.limit)
            except ConnectionAbortedError:
                return
            response = (
                await asyncio.to_thread(_finish, plan, body)
                if body is not None
                else _error(413, f"Request body is larger than {plan.limit} bytes", plan.extra)
            )
        data, out_headers = response.encoded()
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out_headers]
        await send({"type": "http.response.start", "status": response.status, "headers": raw})
        await send({"type": "http.response.body", "body": data})

    return app
