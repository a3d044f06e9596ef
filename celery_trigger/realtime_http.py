"""Realtime for browsers over Server-Sent Events, plus triggering with a public token
(SEMANTICS §12): one framework-free ASGI 3 callable.

Routes (under ``prefix``):

* ``GET /realtime/v1/runs/<run id>`` follows one run and ends after its final state (``event:
  end``) unless ``?stop_on_completion=false``. Token: a scope covering the run (``read:runs``,
  ``read:runs:<id>``, ``read:tasks:<task>``, ``read:tags:<one of its tags>``,
  ``read:batch:<its batch>``).
* ``GET /realtime/v1/runs?tags=a,b[&created_at=24h]`` follows runs carrying all the tags.
  Token: ``read:runs`` or ``read:tags:<t>`` for at least one requested tag (every run yielded
  carries that tag, so nothing else can leak).
* ``GET /realtime/v1/batches/<batch id>`` follows the runs of a batch. Token: ``read:runs`` or
  ``read:batch:<id>``.
* ``POST /api/v1/tasks/<task id>/trigger`` with ``{"payload": ..., "options": {...}}`` and a
  ``trigger:tasks:<id>`` token answers ``{"id", "is_cached", "public_access_token"}``.
* any other path goes to ``celery_trigger.http.asgi_app`` (the waitpoint token routes), so one
  mount serves everything.

The three ``GET`` routes answer ``text/event-stream``; the token comes from ``Authorization:
Bearer`` or ``?token=`` (``EventSource`` cannot send headers). Common query parameters:
``skip_columns=payload,output``, ``streams=0`` (leave realtime stream chunks out; default on).
Events: ``event: run`` (data: ``Run.to_json``), ``event: chunk`` (data: ``{"run_id", "stream",
"chunk"}``), ``event: log`` (data: ``{"run_id", "entry": LogEntry.to_json}``, a record of
the run's own log), ``event: end`` (the run is final; the server closes: call ``close()`` or
the browser reconnects), ``event: failure`` (data ``{"error"}``, then close; not ``error``, which
``EventSource`` uses for its own connection errors) and ``: ping`` comments
every ``keepalive_s``. Every run and chunk event carries ``id: <subscription cursor>``: a
reconnecting ``EventSource`` sends it back as ``Last-Event-ID`` (``?cursor=`` works too) and
resumes with the current run state and the chunks after it, none repeated or missed.

Invariants: no web framework; nothing a client sends makes the callable raise; the engine is
looked up per request; permission is checked before the first byte is streamed (401/403/404
JSON ``{"error": ...}``), and each run of a tag or batch stream is checked against the token
again; a client that disconnects ends its subscription (``unsubscribe``) with no task or hub
watch left behind. A token is checked when a stream opens (and on each reconnect), not again
while it stays open. Example::

    import uvicorn
    from celery_trigger.realtime_http import realtime_app

    uvicorn.run(realtime_app(), port=8000)        # or fastapi_app.mount("/trigger", ...)
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from . import auth, realtime
from ._engine import run_queries
from ._engine.engine import Engine, current
from ._engine.subscriptions import LOG_STREAM
from ._public_trigger import parse_body, run_trigger
from .errors import (
    AuthenticationError,
    ConfigurationError,
    PermissionDeniedError,
    RunNotFoundError,
    StoreUnavailableError,
)
from .http import ASGIApp, _normalize_prefix, _read_asgi, asgi_app
from .options import normalize_tags
from .realtime import RunSubscription, StreamPart

logger = logging.getLogger("celery_trigger.realtime_http")

KEEPALIVE_S = 15.0
#: the reconnection delay the stream asks browsers to use (SSE ``retry:``)
RETRY_MS = 2000
_QUEUE_ITEMS = 256  # items buffered between the subscription and a slow client
_ID = r"([^/]{1,200})"
_RUN = re.compile(rf"/realtime/v1/runs/{_ID}")
_RUNS = "/realtime/v1/runs"
_BATCH = re.compile(rf"/realtime/v1/batches/{_ID}")
_TRIGGER = re.compile(rf"/api/v1/tasks/{_ID}/trigger")
_CORS = (("access-control-allow-origin", "*"),)
_PREFLIGHT = (
    *_CORS,
    ("access-control-allow-methods", "GET, POST, OPTIONS"),
    ("access-control-allow-headers", "authorization, content-type, last-event-id, cache-control"),
    ("access-control-max-age", "600"),
)
_SSE = (
    ("content-type", "text/event-stream; charset=utf-8"),
    ("cache-control", "no-cache"),
    ("x-accel-buffering", "no"),  # nginx: do not buffer the stream
    *_CORS,
)
#: columns the per-run token check needs: read even when skipped, left out when sent
_CHECKED_COLUMNS = frozenset({"tags", "batch_id"})
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
_END = object()


class _Refused(Exception):
    """A request answered with a JSON error (raised inside the request handlers)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class _Out:
    """The response side of one request; remembers whether it started and if the client left."""

    def __init__(self, send: Any) -> None:
        self._send = send
        self.started = self.finished = self.gone = False

    async def _emit(self, message: dict[str, Any]) -> bool:
        if self.gone or self.finished:
            return False
        try:
            await self._send(message)
        except OSError:  # ASGI 2.4: sending to a disconnected client
            self.gone = True
            return False
        return True

    async def start(self, status: int, headers: tuple[tuple[str, str], ...]) -> bool:
        self.started = True
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        return await self._emit({"type": "http.response.start", "status": status, "headers": raw})

    async def write(self, data: bytes, *, more: bool = True) -> bool:
        ok = await self._emit({"type": "http.response.body", "body": data, "more_body": more})
        self.finished = self.finished or not more
        return ok

    async def json(
        self, status: int, body: Any, headers: tuple[tuple[str, str], ...] = _CORS
    ) -> None:
        data = b"" if status == 204 else json.dumps(body, separators=(",", ":")).encode()
        kind = () if status == 204 else (("content-type", "application/json"),)
        await self.start(status, (*kind, ("content-length", str(len(data))), *headers))
        await self.write(data, more=False)

    async def error(
        self, status: int, message: str, headers: tuple[tuple[str, str], ...] = _CORS
    ) -> None:
        await self.json(status, {"error": message}, headers)


@dataclass(frozen=True)
class _View:
    """How subscription items become SSE events for one stream."""

    skip: frozenset[str]
    claims: Mapping[str, Any] | None  # set: drop runs the token does not cover
    ends: bool  # send ``event: end`` when the subscription ends by itself

    def render(self, item: Any, cursor: str) -> bytes | None:
        if isinstance(item, StreamPart):
            run, name = item.run, _event_name(item.type)
        else:
            run, name = item, "run"
        if self.claims is not None and not auth.permits(self.claims, action="read", resource=run):
            return None
        if name == "run":
            data: Any = run.to_json(self.skip)
        elif name == "log":
            data = {"run_id": run.id, "entry": item.chunk}
        else:
            data = {"run_id": run.id, "stream": item.type, "chunk": item.chunk}
        return _event(name, data, cursor)


def _event_name(part_type: str) -> str:
    """The SSE event of a stream part: ``run``, ``log`` (the run's own log) or ``chunk``."""
    if part_type == LOG_STREAM:
        return "log"
    return "run" if part_type == "run" else "chunk"


def _event(name: str, data: Any, event_id: str | None = None) -> bytes:
    """One SSE event; the JSON is a single line (``json.dumps`` escapes newlines)."""
    head = f"event: {name}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return f"{head}data: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


# --- request parsing --------------------------------------------------------------------------


def _one(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _flag(query: Mapping[str, list[str]], name: str, default: bool) -> bool:
    value = _one(query, name)
    if value is None or value == "":
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f"{name} must be true or false, not {value!r}")


def _items(query: Mapping[str, list[str]], name: str) -> list[str]:
    """Comma-separated and repeated values of ``name``, stripped, empty ones dropped."""
    return [p.strip() for v in query.get(name, ()) for p in v.split(",") if p.strip()]


def _bearer(headers: Mapping[str, str]) -> str | None:
    scheme, _, credential = headers.get("authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return credential.strip() or None


def _authorize(engine: Any, token: str | None, resources: list[Any], action: str = "read") -> Any:
    """The token's claims if it grants ``action`` on any of ``resources``; else ``_Refused``."""
    denied: PermissionDeniedError | None = None
    for resource in resources:
        try:
            return auth.verify(token or "", action=action, resource=resource, engine=engine)
        except AuthenticationError as exc:
            raise _Refused(401, str(exc)) from None
        except ValueError as exc:  # an id the resource syntax does not allow
            raise _Refused(400, str(exc)) from None
        except PermissionDeniedError as exc:
            denied = denied or exc
    raise _Refused(403, str(denied))


# --- subscriptions ----------------------------------------------------------------------------


def _open(
    engine: Engine,
    kind: str,
    ident: str,
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
) -> tuple[RunSubscription[Any], _View]:
    """Authorise and subscribe (blocking: runs in a thread). Raises ``_Refused``."""
    token = _bearer(headers) or _one(query, "token")
    skip = frozenset(_items(query, "skip_columns"))
    cursor = headers.get("last-event-id", "").strip() or _one(query, "cursor") or None
    subscribe_skip = skip - _CHECKED_COLUMNS
    claims: Any = None
    try:
        streams = _flag(query, "streams", True)
        if kind == "run":
            run = run_queries.find(engine, ident)
            if run is None:  # 404 only to a token that could read it: no id probing
                _authorize(engine, token, [f"runs:{ident}"])
                raise _Refused(404, f"Run {ident} not found")
            _authorize(engine, token, [run])
            stop = _flag(query, "stop_on_completion", True)
            sub = realtime.subscribe_run(
                engine, ident, stop_on_completion=stop, skip_columns=subscribe_skip, cursor=cursor
            )
        elif kind == "tags":
            tags = normalize_tags(_items(query, "tags"))
            if not tags:
                raise _Refused(400, "give the tags to follow: ?tags=a,b")
            claims = _authorize(engine, token, ["runs", *(f"tags:{t}" for t in tags)])
            window = _one(query, "created_at") or "24h"
            sub = realtime.subscribe_tags(
                engine, tags, created_at=window, skip_columns=subscribe_skip, cursor=cursor
            )
        else:
            claims = _authorize(engine, token, ["runs", f"batch:{ident}"])
            sub = realtime.subscribe_batch(
                engine, ident, skip_columns=subscribe_skip, cursor=cursor
            )
    except RunNotFoundError as exc:
        raise _Refused(404, str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise _Refused(400, str(exc)) from None
    if streams:
        sub.with_streams()
    return sub, _View(skip, claims, ends=kind == "run")


async def _pump(sub: RunSubscription[Any], queue: asyncio.Queue[Any]) -> None:
    """Move items (with the cursor after each) to ``queue``; then ``_END`` or the failure.

    Iterates until the subscription ends by itself, so its hub watches are always released.
    """
    outcome: Any = _END
    try:
        async for item in sub:
            await queue.put((item, sub.cursor))
    except Exception as exc:
        logger.exception("realtime subscription failed")
        outcome = exc
    await queue.put(outcome)


async def _until_disconnect(receive: Any, sub: RunSubscription[Any], out: _Out) -> None:
    while True:
        message = await receive()
        if message.get("type") == "http.disconnect":
            out.gone = True
            sub.unsubscribe()
            return


async def _stream(
    sub: RunSubscription[Any], view: _View, receive: Any, out: _Out, keepalive_s: float
) -> None:
    """Send the subscription as SSE until it ends or the client leaves."""
    queue: asyncio.Queue[Any] = asyncio.Queue(_QUEUE_ITEMS)
    pump = asyncio.create_task(_pump(sub, queue))
    watcher = asyncio.create_task(_until_disconnect(receive, sub, out))
    getter: asyncio.Future[Any] | None = None
    item: Any = _END
    try:
        if not (await out.start(200, _SSE) and await out.write(b"retry: %d\n\n" % RETRY_MS)):
            sub.unsubscribe()  # the client left already: drain what the pump still sends
        while True:
            getter = getter or asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({getter}, timeout=keepalive_s)
            if not done:
                if not await out.write(b": ping\n\n"):
                    sub.unsubscribe()
                continue
            item, getter = getter.result(), None
            if item is _END or isinstance(item, Exception):
                break
            data = None if out.gone else view.render(*item)
            if data is not None and not await out.write(data):
                sub.unsubscribe()  # keep draining until the pump ends
        if item is not _END:
            await out.write(_event("failure", {"error": "Internal error"}))
        elif view.ends and not out.gone:
            await out.write(_event("end", {}))
        await out.write(b"", more=False)
    finally:
        sub.unsubscribe()
        for task in (watcher, getter, pump):
            if task is not None and not task.done():
                task.cancel()
        await asyncio.gather(watcher, pump, return_exceptions=True)


# --- triggering -------------------------------------------------------------------------------


async def _trigger_route(
    engine: Any, task_id: str, headers: Mapping[str, str], receive: Any, out: _Out
) -> None:
    token = _bearer(headers)
    try:
        _authorize(engine, token, [f"tasks:{task_id}"], action="trigger")
    except _Refused as exc:
        return await out.error(exc.status, str(exc))
    limit = int(engine.settings.max_payload_bytes)
    length = headers.get("content-length", "").strip()
    if length.isascii() and length.isdigit() and int(length) > limit:
        return await out.error(413, f"Request body is larger than {limit} bytes")
    try:
        raw = await _read_asgi(receive, limit)
    except ConnectionAbortedError:
        return None
    if raw is None:
        return await out.error(413, f"Request body is larger than {limit} bytes")
    status, body = parse_body(raw)
    if status:
        return await out.error(status, body)
    try:
        status, answer = await asyncio.to_thread(run_trigger, engine, task_id, token or "", body)
    except UnicodeError:  # strings with lone surrogates cannot be stored as UTF-8
        status, answer = 400, {"error": "Body is not valid UTF-8 JSON"}
    await out.json(status, answer)


# --- the app ----------------------------------------------------------------------------------


def _route(path: str) -> tuple[str, str] | None:
    if match := _RUN.fullmatch(path):
        return "run", match.group(1)
    if path == _RUNS:
        return "tags", ""
    if match := _BATCH.fullmatch(path):
        return "batch", match.group(1)
    if match := _TRIGGER.fullmatch(path):
        return "trigger", match.group(1)
    return None


async def _handle(
    engine: Any,
    kind: str,
    ident: str,
    scope: dict[str, Any],
    receive: Any,
    out: _Out,
    keepalive_s: float,
) -> None:
    method = str(scope.get("method", "GET")).upper()
    allow = "POST, OPTIONS" if kind == "trigger" else "GET, OPTIONS"
    if method == "OPTIONS":
        return await out.json(204, None, _PREFLIGHT)
    if method not in allow:
        return await out.error(405, "Method not allowed", (*_CORS, ("allow", allow)))
    try:
        engine = engine if engine is not None else current()
    except ConfigurationError:
        return await out.error(503, "celery_trigger.setup(app) has not been called")
    if not engine.settings.secret_key:
        return await out.error(401, "trigger_secret_key is not set: cannot authenticate")
    headers = {
        bytes(k).decode("latin-1").lower(): bytes(v).decode("latin-1")
        for k, v in scope.get("headers", [])
    }
    if kind == "trigger":
        return await _trigger_route(engine, ident, headers, receive, out)
    query = parse_qs(bytes(scope.get("query_string", b"")).decode("latin-1"))
    try:
        sub, view = await asyncio.to_thread(_open, engine, kind, ident, query, headers)
    except _Refused as exc:
        return await out.error(exc.status, str(exc))
    await _stream(sub, view, receive, out, keepalive_s)


def realtime_app(
    *, engine: Any = None, prefix: str = "", keepalive_s: float = KEEPALIVE_S
) -> ASGIApp:
    """An ASGI 3 callable serving the realtime SSE routes, the trigger route and (for every
    other path) the waitpoint token routes of ``celery_trigger.http``, under ``prefix``.

    Example::

        app = realtime_app()                          # after or before ct.setup(celery_app)
        fastapi_app.mount("/trigger", app)            # Starlette/FastAPI
        uvicorn.run(realtime_app(prefix="/trigger"), port=8000)
    """
    prefix = _normalize_prefix(prefix)
    if not keepalive_s > 0:
        raise ValueError("keepalive_s must be a positive number of seconds")
    fallback = asgi_app(engine=engine, prefix=prefix)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":  # lifespan and websockets: as the token app does
            return await fallback(scope, receive, send)
        path, root = str(scope.get("path") or "/"), str(scope.get("root_path") or "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        route = _route(path[len(prefix) :]) if path.startswith(prefix) else None
        if route is None:
            return await fallback(scope, receive, send)
        out = _Out(send)
        try:
            await _handle(engine, *route, scope, receive, out, keepalive_s)
        except StoreUnavailableError as exc:
            logger.warning("realtime request failed: %s", exc)
            if not out.started:
                await out.error(503, "Store unavailable, try again")
        except Exception:
            logger.exception("celery_trigger.realtime_http failed on %s", path)
            if not out.started:
                await out.error(500, "Internal error")
            elif not out.finished:
                await out.write(b"", more=False)

    return app


__all__ = ["KEEPALIVE_S", "realtime_app"]
