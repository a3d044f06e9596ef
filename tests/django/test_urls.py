"""``path("trigger/", include("celery_trigger_django.urls"))``: the waitpoint token routes
through Django (test client, WSGI handler) and the realtime SSE routes under ASGI (the
project's ``asgi.py`` served by uvicorn)."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import celery_trigger as ct
from tests.django.conftest import CtApp, wait_for_final
from tests.helpers import wait_for


def _token_of(tag: str) -> Any:
    def find() -> Any:
        tokens = ct.wait.list_tokens(tags=tag, status="WAITING")
        return tokens[0] if tokens else None

    return wait_for(find, message=f"no waiting token tagged {tag}")


def test_token_callback_url_completes_the_token_through_django(ctapp: CtApp) -> None:
    """DJ-6: token.url points at the Django mount; POSTing JSON there resumes the run."""
    from django.test import Client

    order = uuid.uuid4().hex[:8]
    with ctapp.worker():
        # Given a run waiting for an approval token
        handle = ct.tasks.trigger("dj-wait-approval", {"order": order})
        token = _token_of(f"order:{order}")
        assert token.url.startswith("http://testserver/trigger/api/v1/waitpoints/tokens/")
        # When a reviewer POSTs to the token's URL (no CSRF token, no session)
        client = Client(enforce_csrf_checks=True)
        response = client.post(
            token.url.removeprefix("http://testserver"),
            data=json.dumps({"approved": True}),
            content_type="application/json",
        )
        # Then the endpoint answers as the core app does and the run completes
        assert response.status_code == 200
        assert response.json() == {"success": True}
        run = wait_for_final(handle.id)
    assert run.output == {"approved": True}


def test_token_routes_refuse_a_wrong_hash_and_unknown_paths(ctapp: CtApp) -> None:
    from django.test import Client

    token = ct.wait.create_token(timeout="1h")
    client = Client()
    wrong = f"/trigger/api/v1/waitpoints/tokens/{token.id}/callback/{'0' * 64}"
    response = client.post(wrong, data="{}", content_type="application/json")
    assert response.status_code == 401
    assert client.get("/trigger/nothing-here").status_code == 404
    assert ct.wait.retrieve_token(token.id).status == "WAITING"


def test_complete_route_with_the_secret_key_as_bearer(ctapp: CtApp) -> None:
    from django.test import Client

    token = ct.wait.create_token(timeout="1h")
    response = Client().post(
        f"/trigger/api/v1/waitpoints/tokens/{token.id}/complete",
        data=json.dumps({"data": {"ok": 1}}),
        content_type="application/json",
        headers={"Authorization": f"Bearer {ctapp.trigger.settings.secret_key}"},
    )
    assert response.status_code == 200, response.content
    assert ct.wait.retrieve_token(token.id).output == {"ok": 1}


def test_realtime_routes_answer_501_under_wsgi(ctapp: CtApp) -> None:
    """DJ-6: SSE needs ASGI; under WSGI the stream routes say so instead of holding a worker."""
    from django.test import Client

    response = Client().get("/trigger/realtime/v1/runs/run_x?token=t")
    assert response.status_code == 501
    assert "ASGI" in response.json()["error"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def asgi_server(ctapp: CtApp) -> Iterator[str]:
    """The project's asgi.py (Django's ASGI handler) served by uvicorn in a thread."""
    import uvicorn

    from tests.django.proj.asgi import application

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            application, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=10, message="uvicorn did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_realtime_run_stream_under_asgi(ctapp: CtApp, asgi_server: str) -> None:
    """DJ-6: under ASGI the mount serves the realtime SSE routes: run events, then end."""
    with ctapp.worker():
        # Given a run and the read token its handle carries
        handle = ct.tasks.trigger("dj-echo", {"hello": "sse"})
        url = f"{asgi_server}/trigger/realtime/v1/runs/{handle.id}"
        events: list[tuple[str, Any]] = []
        # When a client follows it over Server-Sent Events through Django
        with httpx.stream(
            "GET", url, params={"token": handle.public_access_token}, timeout=20
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            name = None
            for line in response.iter_lines():
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name:
                    events.append((name, json.loads(line[6:])))
                    if name == "end":
                        break
    # Then it sees the run's states up to COMPLETED and the end event
    runs = [data for name, data in events if name == "run"]
    assert runs[-1]["status"] == "COMPLETED"
    assert runs[-1]["output"] == {"hello": "sse"}
    assert events[-1][0] == "end"


def test_realtime_refuses_without_a_token_under_asgi(ctapp: CtApp, asgi_server: str) -> None:
    response = httpx.get(f"{asgi_server}/trigger/realtime/v1/runs/run_nope", timeout=10)
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "*"
