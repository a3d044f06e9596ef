"""The HTTP endpoints of celery-trigger served by Django views (``urls.py``).

- Token routes (``api/v1/waitpoints/tokens/...``): a sync view that hands the request to
  ``celery_trigger.http.wsgi_app``; works under WSGI and ASGI.
- Realtime routes (``realtime/v1/...``) and the trigger route (``api/v1/tasks/<id>/trigger``):
  an async view that runs ``celery_trigger.realtime_http.realtime_app`` on the request's ASGI
  scope and streams its answer (Server-Sent Events). Under WSGI, where an open stream would
  hold a worker, the SSE routes answer 501.

Invariants: no CSRF (the credentials are the token hash or a bearer token, never cookies);
the core apps decide every status and header; the view only translates.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from celery_trigger.http import wsgi_app
from celery_trigger.realtime_http import realtime_app

_tokens_app = wsgi_app()
_realtime_app = realtime_app()


def _headers(response: HttpResponse | StreamingHttpResponse, raw: Any) -> None:
    for key, value in raw:
        name = key.decode("latin-1") if isinstance(key, bytes) else str(key)
        text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
        if name.lower() != "content-type":
            response[name] = text


@csrf_exempt
def tokens(request: HttpRequest, path: str) -> HttpResponse:
    """Complete a waitpoint token (``celery_trigger.http``'s routes, under this mount)."""
    environ = dict(request.META)
    environ["PATH_INFO"] = "/" + path
    environ["SCRIPT_NAME"] = ""
    environ["wsgi.input"] = request  # HttpRequest.read() streams the body
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], *_: Any) -> None:
        captured["status"], captured["headers"] = int(status.split()[0]), headers

    body = b"".join(_tokens_app(environ, start_response))
    content_type = dict((k.lower(), v) for k, v in captured["headers"]).get("content-type")
    response = HttpResponse(body, status=captured["status"], content_type=content_type)
    _headers(response, captured["headers"])
    return response


def _not_asgi() -> HttpResponse:
    return HttpResponse(
        json.dumps({"error": "Realtime streams need an ASGI server (uvicorn, daphne)"}),
        status=501,
        content_type="application/json",
    )


@csrf_exempt
async def realtime(request: HttpRequest, path: str) -> HttpResponse | StreamingHttpResponse:
    """Serve the realtime SSE and trigger routes through the core ASGI app."""
    if not isinstance(request, ASGIRequest):
        if request.method == "GET":
            return _not_asgi()
        scope = _scope_from_wsgi(request, path)
    else:
        scope = dict(request.scope)
        scope["path"], scope["root_path"] = "/" + path, ""
        scope["raw_path"] = scope["path"].encode()
    body = request.body
    return await _forward(scope, body)


def _scope_from_wsgi(request: HttpRequest, path: str) -> dict[str, Any]:
    headers = [
        (k[5:].replace("_", "-").lower().encode("latin-1"), str(v).encode("latin-1"))
        for k, v in request.META.items()
        if k.startswith("HTTP_")
    ]
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if request.META.get(key):
            headers.append((key.replace("_", "-").lower().encode(), request.META[key].encode()))
    return {
        "type": "http",
        "method": request.method,
        "path": "/" + path,
        "root_path": "",
        "query_string": request.META.get("QUERY_STRING", "").encode("latin-1"),
        "headers": headers,
    }


async def _forward(scope: dict[str, Any], body: bytes) -> HttpResponse | StreamingHttpResponse:
    out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    gone = asyncio.Event()
    state = {"sent_body": False}

    async def receive() -> dict[str, Any]:
        if not state["sent_body"]:
            state["sent_body"] = True
            return {"type": "http.request", "body": body, "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        await out.put(message)

    app_task = asyncio.ensure_future(_realtime_app(scope, receive, send))
    start = await _next(out, app_task)
    if start is None:
        return HttpResponse(status=500)
    raw = start.get("headers", [])
    content_type = next((v.decode() for k, v in raw if k.lower() == b"content-type"), None)

    async def chunks() -> AsyncIterator[bytes]:
        try:
            while True:
                message = await _next(out, app_task)
                if message is None:
                    return
                if message.get("body"):
                    yield bytes(message["body"])
                if not message.get("more_body"):
                    return
        finally:
            gone.set()  # the client left (or the app finished): let the app clean up
            await _finish(app_task)

    status = int(start["status"])
    if content_type and content_type.startswith("text/event-stream"):
        response: HttpResponse | StreamingHttpResponse = StreamingHttpResponse(
            chunks(), status=status, content_type=content_type
        )
    else:
        response = HttpResponse(
            b"".join([c async for c in chunks()]), status=status, content_type=content_type
        )
    _headers(response, raw)
    return response


async def _next(out: asyncio.Queue[dict[str, Any]], app_task: asyncio.Future[Any]) -> Any:
    """The app's next message, or None when it finished without sending one."""
    if not out.empty():
        return out.get_nowait()
    getter = asyncio.ensure_future(out.get())
    done, _ = await asyncio.wait({getter, app_task}, return_when=asyncio.FIRST_COMPLETED)
    if getter in done:
        return getter.result()
    getter.cancel()
    if not out.empty():
        return out.get_nowait()
    app_task.result()  # re-raise what the app raised
    return None


async def _finish(app_task: asyncio.Future[Any]) -> None:
    try:
        await asyncio.wait_for(asyncio.shield(app_task), timeout=5)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        app_task.cancel()
    except Exception:
        pass  # the core app logs its own failures
