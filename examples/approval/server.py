"""The HTTP endpoint reviewers answer to: celery-trigger's WSGI app on the stdlib server.

``application`` is an ordinary WSGI callable, so in production any WSGI server can host it
(``gunicorn server:application``) or it can be mounted next to a Flask/Django app (see
``celery_trigger.http``). Standalone::

    TRIGGER_SECRET_KEY=... python examples/approval/server.py --redis redis://localhost:6379/0
"""

from __future__ import annotations

import argparse
import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from celery_trigger.http import wsgi_app

#: Built before ``ct.setup``: the app looks the engine up on each request.
application = wsgi_app()


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""


@contextlib.contextmanager
def serving(host: str = "127.0.0.1", port: int = 0) -> Iterator[WSGIServer]:
    """Serve ``application`` in a background thread while the block runs (port 0: any free)."""
    server = make_server(host, port, application, handler_class=QuietHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def main(argv: list[str] | None = None) -> None:
    from app import make_app

    parser = argparse.ArgumentParser(description="serve waitpoint token callbacks")
    parser.add_argument("--redis", metavar="URL", required=True)
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    if not os.environ.get("TRIGGER_SECRET_KEY"):
        parser.error("set TRIGGER_SECRET_KEY to the key the workers use (it signs token URLs)")
    make_app(args.redis, base_url=f"http://localhost:{args.port}")
    server = make_server("", args.port, application)
    print(f"serving token callbacks on port {args.port}")
    server.serve_forever()


if __name__ == "__main__":
    main()
