"""Realtime over HTTP (SEMANTICS §12, RT-1, RT-2, RT-4..RT-7): ``realtime_app`` served by a
real uvicorn server on 127.0.0.1, read with httpx's streaming client as Server-Sent Events,
runs executed by a real worker.

One server serves the whole module (the app looks the engine up per request, so every test's
own engine answers): ``/`` is ``realtime_app()``, ``/fast`` the same app with 0.2 s keep-alive.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
import uvicorn

import celery_trigger as ct
from celery_trigger._engine.hub import hub_for
from celery_trigger.realtime_http import _View, realtime_app
from celery_trigger.result import Run

from .conftest import Engine, wait_for, wait_for_status

ORDER = {"PENDING_VERSION": 0, "DELAYED": 0, "QUEUED": 1, "DEQUEUED": 2, "EXECUTING": 3}
FINAL_ORDER = 4
gates: dict[str, threading.Event] = {}


def gate(name: str) -> threading.Event:
    return gates.setdefault(name, threading.Event())


@ct.task(id="rth-progress")
def rth_progress(payload: Any) -> Any:
    ct.metadata.set("progress", 0.5)
    ct.metadata.flush()
    assert gate(payload["gate"]).wait(20)
    ct.metadata.set("progress", 1.0)
    return {"done": True}


@ct.task(id="rth-stream")
def rth_stream(payload: Any) -> Any:
    return "".join(ct.metadata.stream("tokens", [f"t{i} " for i in range(payload["n"])]))


@ct.task(id="rth-echo")
def rth_echo(payload: Any) -> Any:
    return payload


# --- server and SSE client --------------------------------------------------------------------


@contextlib.contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free local port in a thread; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, timeout=10, message="uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _dispatch(fast: Any, normal: Any) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        target = fast if str(scope.get("path", "")).startswith("/fast/") else normal
        await target(scope, receive, send)

    return app


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with serving(_dispatch(realtime_app(prefix="/fast", keepalive_s=0.2), realtime_app())) as url:
        yield url


@pytest.fixture
def client(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(10.0)) as c:
        yield c


@dataclass
class Event:
    event: str
    id: str | None
    data: Any


def events(response: httpx.Response) -> Iterator[Event]:
    """Parse an SSE body; comments come out as ``Event(":", None, text)``."""
    name, event_id, data = "message", None, []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield Event(name, event_id, json.loads("\n".join(data)))
            name, event_id, data = "message", None, []
        elif line.startswith(":"):
            yield Event(":", None, line[1:].strip())
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)


def take_until_end(stream: Iterator[Event]) -> list[Event]:
    out = [e for e in stream if e.event != ":"]
    assert out and out[-1].event == "end", [e.event for e in out]
    return out


def chunks(evs: list[Event]) -> list[Any]:
    return [e.data["chunk"] for e in evs if e.event == "chunk"]


def sign(engine: Engine, scopes: list[str], exp: float) -> str:
    claims = {"iss": "celery-trigger", "aud": "celery-trigger", "jti": uuid.uuid4().hex}
    secret = engine.trigger.settings.secret_key
    return jwt.encode({**claims, "exp": int(exp), "scopes": scopes}, secret, algorithm="HS256")


def watched(engine: Engine) -> int:
    return hub_for(engine.trigger).watched


# --- subscriptions ----------------------------------------------------------------------------


def test_run_stream_sends_states_in_order_then_end(engine: Engine, client: httpx.Client) -> None:
    """RT-1, RT-2 over SSE: current state first, statuses never backwards, a metadata change
    arrives while the run executes, the final COMPLETED object, then ``event: end`` and the
    server closes; the subscription is released."""
    key = uuid.uuid4().hex
    handle = rth_progress.trigger({"gate": key})
    url = f"/realtime/v1/runs/{handle.id}"
    with client.stream("GET", url, params={"token": handle.public_access_token}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["access-control-allow-origin"] == "*"
        stream = events(response)
        first = next(stream)
        assert (first.event, first.data["status"], first.id) == ("run", "QUEUED", "")
        seen = [first]
        with engine.worker():
            try:
                for event in stream:
                    seen.append(event)
                    if event.event == "run" and (event.data["metadata"] or {}).get("progress"):
                        assert event.data["status"] == "EXECUTING"
                        assert event.data["metadata"]["progress"] == 0.5
                        break
            finally:
                gate(key).set()  # the run finishes whatever happened
            seen += take_until_end(stream)
        assert list(stream) == []  # the server closed the response
    runs = [e.data for e in seen if e.event == "run"]
    ranks = [ORDER.get(r["status"], FINAL_ORDER) for r in runs]
    assert ranks == sorted(ranks), [r["status"] for r in runs]
    assert runs[-1]["status"] == "COMPLETED" and runs[-1]["finished_at"]
    assert runs[-1]["metadata"]["progress"] == 1.0 and runs[-1]["output"] == {"done": True}
    assert all(e.id is not None for e in seen if e.event == "run")
    wait_for(lambda: watched(engine) == 0, timeout=5, message="subscription not released")


def test_stop_on_completion_false_stays_open_with_pings(
    engine: Engine, client: httpx.Client
) -> None:
    """RT-1 (``stop_on_completion=false``), keep-alive comments and ``skip_columns``: a final
    run is sent without heavy columns, then no ``end``, only ``: ping`` lines."""
    handle = rth_echo.trigger({"big": "x" * 100})
    with engine.worker():
        wait_for_status(handle.id)
    params = {
        "token": handle.public_access_token,
        "stop_on_completion": "false",
        "skip_columns": "payload,output",
    }
    with client.stream("GET", f"/fast/realtime/v1/runs/{handle.id}", params=params) as response:
        stream = events(response)
        run = next(stream)
        assert run.event == "run" and run.data["status"] == "COMPLETED"
        assert "payload" not in run.data and "output" not in run.data
        assert [next(stream), next(stream)] == [Event(":", None, "ping")] * 2


def test_stream_chunks_follow_the_run_event_in_order(engine: Engine, client: httpx.Client) -> None:
    """RT-4 over SSE: a run event comes before the first chunk, then every chunk in order as
    ``event: chunk`` with the run id and stream key, each with a cursor id; then ``end``."""
    handle = rth_stream.trigger({"n": 8})
    url = f"/realtime/v1/runs/{handle.id}"
    headers = {"Authorization": f"Bearer {handle.public_access_token}"}
    with client.stream("GET", url, headers=headers) as response:
        stream = events(response)
        assert next(stream).event == "run"
        with engine.worker():
            seen = take_until_end(stream)
    assert chunks(seen) == [f"t{i} " for i in range(8)]
    first_chunk = next(e for e in seen if e.event == "chunk")
    assert first_chunk.data["run_id"] == handle.id and first_chunk.data["stream"] == "tokens"
    before = seen[: seen.index(first_chunk)]
    assert any("tokens" in e.data["realtime_streams"] for e in before if e.event == "run")
    ids = [e.id for e in seen if e.event == "chunk"]
    assert all(ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("resume", ["header", "query"])
def test_reconnect_with_last_event_id_resumes_chunks(
    engine: Engine, client: httpx.Client, resume: str
) -> None:
    """RT-4, SSE resume: a client that leaves after two chunks and reconnects with the last
    event id (``Last-Event-ID`` or ``?cursor=``) gets the run again and exactly the rest."""
    handle = rth_stream.trigger({"n": 6})
    with engine.worker():
        wait_for_status(handle.id)
    url, token = f"/realtime/v1/runs/{handle.id}", handle.public_access_token
    with client.stream("GET", url, params={"token": token}) as response:
        got: list[Event] = []
        for event in events(response):
            got.append(event)
            if len(chunks(got)) == 2:
                break
    assert chunks(got) == ["t0 ", "t1 "]
    last_id = got[-1].id
    assert last_id
    params, headers = {"token": token}, {}
    if resume == "header":
        headers["Last-Event-ID"] = last_id
    else:
        params["cursor"] = last_id
    with client.stream("GET", url, params=params, headers=headers) as response:
        rest = take_until_end(events(response))
    assert rest[0].event == "run" and rest[0].data["status"] == "COMPLETED"
    assert chunks(rest) == ["t2 ", "t3 ", "t4 ", "t5 "]
    for bad in ({"cursor": "not-a-cursor"}, {"skip_columns": "nope"}, {"streams": "maybe"}):
        refused = client.get(url, params={"token": token, **bad})
        assert refused.status_code == 400 and refused.json()["error"]


def test_client_disconnect_frees_the_subscription(engine: Engine, client: httpx.Client) -> None:
    """A tag stream never ends by itself: closing the connection unsubscribes (the hub stops
    watching every key) and leaves nothing behind."""
    tag = f"dc-{uuid.uuid4().hex[:8]}"
    rth_echo.trigger({}, tags=[tag])
    token = ct.auth.create_public_token(scopes={"read": {"tags": [tag]}})
    with client.stream("GET", "/realtime/v1/runs", params={"tags": tag, "token": token}) as r:
        assert next(events(r)).event == "run"
        assert watched(engine) > 0
    wait_for(lambda: watched(engine) == 0, timeout=10, message="subscription leaked")


# --- access tokens ----------------------------------------------------------------------------


def test_run_token_reads_its_run_only_and_expires(engine: Engine, client: httpx.Client) -> None:
    """RT-5: a token for run A streams A; for run B it is refused (403); an expired (401), a
    tampered (401) or a missing token (401) is refused before anything is streamed; an unknown
    run is 404 only for a token that could read it."""
    a, b = rth_echo.trigger({"n": 1}), rth_echo.trigger({"n": 2})
    token_a = ct.auth.create_public_token(scopes={"read": {"runs": [a.id]}})
    with client.stream("GET", f"/realtime/v1/runs/{a.id}", params={"token": token_a}) as r:
        assert r.status_code == 200 and next(events(r)).data["id"] == a.id

    def get(run_id: str, token: str | None) -> httpx.Response:
        params = {"token": token} if token is not None else {}
        return client.get(f"/realtime/v1/runs/{run_id}", params=params)

    refused = get(b.id, token_a)
    assert refused.status_code == 403 and "does not allow read" in refused.json()["error"]
    assert refused.headers["access-control-allow-origin"] == "*"
    expired = sign(engine, [f"read:runs:{a.id}"], time.time() - 5)
    assert get(a.id, expired).status_code == 401
    assert "expired" in get(a.id, expired).json()["error"]
    head, body, signature = token_a.split(".")
    tampered = f"{head}.{body}.{signature[:-4]}{'AAAA' if signature[-4:] != 'AAAA' else 'BBBB'}"
    assert get(a.id, tampered).status_code == 401
    assert get(a.id, None).status_code == 401
    all_runs = ct.auth.create_public_token(scopes={"read": {"runs": True}})
    assert get("run_missing", all_runs).status_code == 404
    assert get("run_missing", token_a).status_code == 403


def test_tag_and_batch_scoped_tokens(engine: Engine, client: httpx.Client) -> None:
    """RT-7: ``read:tags:<t>`` reads the tag stream and any run tagged t (not an untagged run);
    ``read:batch:<id>`` reads the batch stream and its runs, not a tag stream; an unknown batch
    is 404."""
    tag = f"rt7-{uuid.uuid4().hex[:8]}"
    tagged, other = rth_echo.trigger({}, tags=[tag, "x"]), rth_echo.trigger({})
    tag_token = ct.auth.create_public_token(scopes={"read": {"tags": tag}})
    with client.stream("GET", f"/realtime/v1/runs?tags={tag},x&token={tag_token}") as r:
        first = next(events(r))
        assert first.data["id"] == tagged.id and set(first.data["tags"]) == {tag, "x"}
    with client.stream("GET", f"/realtime/v1/runs/{tagged.id}?token={tag_token}") as r:
        assert r.status_code == 200
    assert client.get(f"/realtime/v1/runs/{other.id}?token={tag_token}").status_code == 403
    assert client.get(f"/realtime/v1/runs?tags=other&token={tag_token}").status_code == 403
    assert client.get(f"/realtime/v1/runs?token={tag_token}").status_code == 400

    batch = ct.tasks.batch_trigger("rth-echo", [{"payload": {"i": i}} for i in range(3)])
    batch_token = batch.public_access_token
    ids = set(batch.runs)
    with client.stream("GET", f"/realtime/v1/batches/{batch.batch_id}?token={batch_token}") as r:
        seen: set[str] = set()
        for event in events(r):
            seen.add(event.data["id"])
            if seen >= ids:
                break
    assert seen == ids
    run_url = f"/realtime/v1/runs/{next(iter(ids))}?token={batch_token}"
    with client.stream("GET", run_url) as r:
        assert r.status_code == 200
    assert client.get(f"/realtime/v1/runs?tags={tag}&token={batch_token}").status_code == 403
    assert client.get(f"/realtime/v1/batches/b_x?token={batch_token}").status_code == 403
    all_runs = ct.auth.create_public_token(scopes={"read": {"runs": True}})
    assert client.get(f"/realtime/v1/batches/b_x?token={all_runs}").status_code == 404
    wait_for(lambda: watched(engine) == 0, timeout=10)


def test_each_run_of_a_shared_stream_is_checked_against_the_token(engine: Engine) -> None:
    """Defence in depth for tag and batch streams: a run the token does not cover renders to
    nothing even if a subscription yielded it."""
    run = Run.from_record(engine.store.get_run(rth_echo.trigger({}, tags=["mine"]).id))
    claims = {"scopes": ["read:tags:theirs"]}
    assert _View(frozenset(), claims, ends=False).render(run, "") is None
    assert _View(frozenset(), {"scopes": ["read:tags:mine"]}, ends=False).render(run, "")


# --- triggering -------------------------------------------------------------------------------


def test_trigger_with_single_use_and_multiple_use_tokens(
    engine: Engine, client: httpx.Client
) -> None:
    """RT-6 over HTTP: a single-use trigger token triggers once (200 with the run id and a
    run token that follows it to completion), the second POST is 401; a ``multiple_use``
    token triggers twice; CORS preflight is answered."""
    url = "/api/v1/tasks/rth-echo/trigger"
    once = ct.auth.create_trigger_public_token("rth-echo")
    body = {"payload": {"hello": "web"}, "options": {"tags": ["from-web"]}}
    first = client.post(url, json=body, headers={"Authorization": f"Bearer {once}"})
    assert first.status_code == 200, first.text
    assert first.headers["access-control-allow-origin"] == "*"
    answer = first.json()
    run = ct.runs.retrieve(answer["id"])
    assert run.payload == {"hello": "web"} and run.tags == ["from-web"]
    again = client.post(url, json=body, headers={"Authorization": f"Bearer {once}"})
    assert again.status_code == 401 and "already been used" in again.json()["error"]
    with engine.worker():
        sse = f"/realtime/v1/runs/{answer['id']}?token={answer['public_access_token']}"
        with client.stream("GET", sse) as response:
            final = [e for e in take_until_end(events(response)) if e.event == "run"][-1]
    assert final.data["output"] == {"hello": "web"}
    many = ct.auth.create_trigger_public_token("rth-echo", multiple_use=True)
    for _ in range(2):
        assert client.post(url, json={}, headers={"Authorization": f"Bearer {many}"}).is_success
    preflight = client.options(url, headers={"Origin": "https://example.com"})
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"]


def test_trigger_refusals(make_engine: Any, client: httpx.Client) -> None:
    """RT-6 errors: wrong scope 403, no token 401, unknown task 404, a body that is not
    ``{"payload", "options"}`` 400, invalid options 422 (the single-use token stays usable),
    a body over ``max_payload_bytes`` 413, GET 405."""
    make_engine(max_payload_bytes=2000)
    url = "/api/v1/tasks/rth-echo/trigger"
    once = ct.auth.create_trigger_public_token("rth-echo")
    auth = {"Authorization": f"Bearer {once}"}
    other = ct.auth.create_trigger_public_token("rth-stream")
    assert (
        client.post(url, json={}, headers={"Authorization": f"Bearer {other}"}).status_code == 403
    )
    assert client.post(url, json={}).status_code == 401
    nobody = ct.auth.create_trigger_public_token("rth-nobody")
    missing = client.post(
        "/api/v1/tasks/rth-nobody/trigger", json={}, headers={"Authorization": f"Bearer {nobody}"}
    )
    assert missing.status_code == 404 and "not found" in missing.json()["error"]
    assert client.post(url, content=b"[1]", headers=auth).status_code == 400
    assert client.post(url, json={"payload": 1, "extra": 2}, headers=auth).status_code == 400
    bad = client.post(url, json={"options": {"bogus": 1}}, headers=auth)
    assert bad.status_code == 422 and "bogus" in bad.json()["error"]
    assert client.post(url, json={"options": {"tags": 5}}, headers=auth).status_code == 422
    big = client.post(url, json={"payload": "x" * 3000}, headers=auth)
    assert big.status_code == 413
    assert client.get(url).status_code == 405
    assert client.post(url, json={"payload": 1}, headers=auth).status_code == 200


def test_one_mount_also_serves_waitpoint_routes_and_prefix(engine: Engine, base_url: str) -> None:
    """Paths the realtime app does not own fall through to ``celery_trigger.http`` (waitpoint
    completion works through the same mount); under ``prefix`` the routes move with it."""
    token = ct.wait.create_token()
    url = f"{base_url}/api/v1/waitpoints/tokens/{token.id}/complete"
    done = httpx.post(
        url,
        json={"data": {"ok": 1}},
        headers={"Authorization": f"Bearer {token.public_access_token}"},
    )
    assert done.status_code == 200 and done.json() == {"success": True}
    assert ct.wait.retrieve_token(token.id).status == "COMPLETED"
    assert httpx.get(f"{base_url}/nowhere").status_code == 404
    handle = rth_echo.trigger({})
    with httpx.stream(
        "GET", f"{base_url}/fast/realtime/v1/runs/{handle.id}?token={handle.public_access_token}"
    ) as response:
        assert response.status_code == 200 and next(events(response)).event == "run"
    assert httpx.get(f"{base_url}/fast/nowhere").json() == {"error": "Not found"}
