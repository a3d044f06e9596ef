"""The web side: one ASGI app serving the page, a token endpoint and celery-trigger's routes.

* ``GET /``: ``static/index.html``;
* ``POST /token``: a single-use trigger token for ``realtime-web-report``. This is the one
  route of your own: in a real application it sits behind your login and decides who may
  start what;
* ``POST /report``: the page posts what it displayed when ``?report=1`` is in its URL (how
  ``run.py --browser`` checks a headless browser); the reports land in ``reports``;
* everything under ``/trigger``: ``celery_trigger.realtime_http.realtime_app`` (SSE
  subscriptions, the trigger endpoint, waitpoint token routes).

Standalone, next to a worker (``celery -A worker worker -Q realtime-web --pool threads``)::

    TRIGGER_SECRET_KEY=... REDIS_URL=redis://localhost:6379/0 uvicorn --factory server:create
"""

from __future__ import annotations

import json
import logging
import os
import queue
from pathlib import Path
from typing import Any

from app import TASK_ID, make_app

import celery_trigger as ct
from celery_trigger.realtime_http import realtime_app

logger = logging.getLogger("realtime_web")
PAGE = (Path(__file__).parent / "static" / "index.html").read_bytes()
#: Built before ``ct.setup``: the app looks the engine up on each request.
realtime = realtime_app(prefix="/trigger")
#: What pages opened with ``?report=1`` posted to ``/report``.
reports: queue.Queue[Any] = queue.Queue()


async def _body(receive: Any, limit: int = 65536) -> bytes:
    data = b""
    while True:
        message = await receive()
        data += message.get("body", b"")
        if len(data) > limit or not message.get("more_body"):
            return data


async def _answer(send: Any, status: int, body: bytes, kind: str) -> None:
    headers = [(b"content-type", kind.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ASGI entry point: the page and token routes here, the rest to ``realtime``."""
    route = (scope.get("method"), scope.get("path")) if scope["type"] == "http" else None
    if route == ("GET", "/"):
        return await _answer(send, 200, PAGE, "text/html; charset=utf-8")
    if route == ("POST", "/token"):
        await _body(receive)
        token = ct.auth.create_trigger_public_token(TASK_ID, expiration_time="5m")
        return await _answer(send, 200, json.dumps({"token": token}).encode(), "application/json")
    if route == ("POST", "/report"):
        try:
            report = json.loads(await _body(receive))
        except ValueError:
            return await _answer(send, 400, b'{"error":"not JSON"}', "application/json")
        logger.info("the page reported %s", report)
        reports.put(report)
        return await _answer(send, 200, b"{}", "application/json")
    await realtime(scope, receive, send)


def create() -> Any:
    """For ``uvicorn --factory server:create``: set celery-trigger up from ``REDIS_URL``."""
    make_app(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
    return application
