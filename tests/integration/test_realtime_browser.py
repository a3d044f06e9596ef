"""A real browser follows a run over SSE (SEMANTICS §12.1, RT-1, RT-2): headless Chromium
opens ``new EventSource('/realtime/v1/runs/<id>?token=...')`` on a page served by the same
uvicorn server as ``realtime_app``, and POSTs what it saw back to that server.

Needs ``/usr/bin/chromium``: skipped without it locally, a failure when ``CI`` is set.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from celery_trigger.realtime_http import realtime_app

from .conftest import Engine, wait_for
from .test_realtime_http import FINAL_ORDER, ORDER, gate, rth_progress, serving

CHROMIUM = "/usr/bin/chromium"
BROWSER_DEADLINE_S = 60.0

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>run</title></head><body><script>
const query = new URLSearchParams(location.search);
const seen = {statuses: [], progress: []};
const report = (name, body) =>
  fetch('/report/' + name, {method: 'POST', body: JSON.stringify(body)});
const source = new EventSource('/realtime/v1/runs/' + query.get('run') +
  '?token=' + encodeURIComponent(query.get('token')));
source.addEventListener('run', (event) => {
  const run = JSON.parse(event.data);
  seen.statuses.push(run.status);
  const progress = (run.metadata || {}).progress;
  if (progress !== undefined) {
    seen.progress.push(progress);
    if (seen.progress.length === 1) report('progress', seen);
  }
});
source.addEventListener('end', () => { source.close(); report('done', seen); });
</script></body></html>
"""


class Reports:
    """What the page POSTed, by name."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        with self.lock:
            return self.items.get(name)

    def put(self, name: str, value: Any) -> None:
        with self.lock:
            self.items[name] = value


def page_app(reports: Reports) -> Any:
    """``GET /page`` (the HTML), ``POST /report/<name>``, everything else: ``realtime_app``."""
    realtime = realtime_app()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not (path == "/page" or path.startswith("/report/")):
            return await realtime(scope, receive, send)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if path.startswith("/report/"):
            reports.put(path.rpartition("/")[2], json.loads(body))
        content = PAGE if path == "/page" else b"{}"
        kind = b"text/html" if path == "/page" else b"application/json"
        headers = [(b"content-type", kind), (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    return app


@pytest.fixture
def chromium() -> str:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing but CI is set: apt-get install chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return CHROMIUM


@pytest.fixture
def browser(chromium: str) -> Iterator[Any]:
    """``open(url)`` starts headless Chromium on ``url``; every browser is killed afterwards."""
    started: list[subprocess.Popen[bytes]] = []
    profile = tempfile.mkdtemp(prefix="ct-chromium-")

    def open_(url: str) -> None:
        command = [
            chromium,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            url,
        ]
        started.append(
            subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: killed with its helpers
            )
        )

    try:
        yield open_
    finally:
        for proc in started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def test_chromium_event_source_follows_a_run_to_completion(engine: Engine, browser: Any) -> None:
    """RT-1, RT-2 in a browser: the page's EventSource sees the progress set while the run
    executes, statuses never going backwards, the final COMPLETED state, then ``end``."""
    key = uuid.uuid4().hex
    handle = rth_progress.trigger({"gate": key})
    reports = Reports()
    with serving(page_app(reports)) as url, engine.worker():
        try:
            query = urlencode({"run": handle.id, "token": handle.public_access_token})
            browser(f"{url}/page?{query}")
            early = wait_for(
                lambda: reports.get("progress"), timeout=BROWSER_DEADLINE_S, message="no progress"
            )
        finally:
            gate(key).set()  # the run finishes whatever happened
        done = wait_for(
            lambda: reports.get("done"), timeout=BROWSER_DEADLINE_S, message="no end event"
        )
    assert early["progress"] == [0.5] and early["statuses"][-1] == "EXECUTING"
    ranks = [ORDER.get(s, FINAL_ORDER) for s in done["statuses"]]
    assert ranks == sorted(ranks), done["statuses"]
    assert done["statuses"][-1] == "COMPLETED"
    assert done["progress"][0] == 0.5 and done["progress"][-1] == 1.0
