"""Run the realtime web demo in one process: web server, worker, and a client.

    python examples/realtime_web/run.py                    # embedded: no Redis at all
    python examples/realtime_web/run.py --redis redis://localhost:6379/0
    python examples/realtime_web/run.py --browser /usr/bin/chromium   # the page, headless
    python examples/realtime_web/run.py --serve            # open the printed URL yourself

1. serve ``server.application`` with uvicorn on a free local port and start a worker;
2. without ``--browser``, a Python client does what the page does: ``POST /token``, ``POST``
   the trigger with that token, follow the run over SSE with the token the trigger returned,
   printing each state and log line;
3. with ``--browser``, headless Chromium opens the page with ``?autostart=1&report=1`` and the
   page posts what it displayed to ``/report``; that is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn
from app import TASK_ID, make_app
from server import application, reports

from celery_trigger.testing import run_worker

TIMEOUT_S = 60.0


@contextlib.contextmanager
def serving() -> Iterator[str]:
    """Serve ``application`` on a free port in a background thread; yield its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(application, log_level="warning", timeout_graceful_shutdown=2)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def sse(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """(event name, JSON data) of each Server-Sent Event; comments are skipped."""
    name, data = "message", ""
    for line in response.iter_lines():
        if not line:
            if data:
                yield name, json.loads(data)
            name, data = "message", ""
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()


def follow_like_the_page(url: str) -> None:
    """What ``static/index.html`` does, with httpx."""
    with httpx.Client(base_url=url, timeout=TIMEOUT_S) as client:
        token = client.post("/token").raise_for_status().json()["token"]
        answer = client.post(
            f"/trigger/api/v1/tasks/{TASK_ID}/trigger",
            headers={"Authorization": f"Bearer {token}"},
            json={"payload": {"steps": 5, "pause": 0.05}},
        )
        run = answer.raise_for_status().json()
        print(f"triggered {run['id']}")
        params = {"token": run["public_access_token"]}
        with client.stream("GET", f"/trigger/realtime/v1/runs/{run['id']}", params=params) as r:
            for name, data in sse(r.raise_for_status()):
                if name == "run":
                    progress = (data["metadata"] or {}).get("progress", 0)
                    print(f"{data['status']} {round(progress * 100)}%")
                elif name == "chunk" and data["stream"] == "log":
                    print(f"log: {data['chunk']}")
                elif name == "end":
                    print("end")


def follow_in_browser(url: str, chromium: str) -> None:
    """Open the page in headless Chromium and print what it reports having displayed."""
    profile = tempfile.TemporaryDirectory(prefix="realtime-web-chromium-")
    command = [
        chromium,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={profile.name}",
        f"{url}/?autostart=1&report=1",
    ]
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        report = reports.get(timeout=TIMEOUT_S)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        profile.cleanup()
    states = [f"{s['status']} {round(s['progress'] * 100)}%" for s in report["seen"]]
    print(f"browser followed {report['run_id']}: {' | '.join(states)}")
    print(f"browser log: {' | '.join(report['log'])}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="celery-trigger realtime web demo")
    parser.add_argument("--redis", metavar="URL", help="use Redis at URL (default: embedded)")
    parser.add_argument("--browser", metavar="CHROMIUM", help="drive the page in this browser")
    parser.add_argument("--serve", action="store_true", help="keep serving until Ctrl-C")
    args = parser.parse_args(argv)
    app = make_app(args.redis)
    with serving() as url, run_worker(app):
        print(f"serving {url}")
        if args.serve:
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
        elif args.browser:
            follow_in_browser(url, args.browser)
        else:
            follow_like_the_page(url)


if __name__ == "__main__":
    main()
