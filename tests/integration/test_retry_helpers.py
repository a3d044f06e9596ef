"""``retry.on_throw`` and ``retry.fetch`` (SEMANTICS §1.4, TASK-15..TASK-18, D-2).

``fetch`` talks to a real HTTP server (stdlib ``ThreadingHTTPServer`` on 127.0.0.1) that
answers from a script and records each request's ``x-retry-count`` header. Tests that only
need to see the back-off delays replace ``retry._sleep`` with a recorder so the file stays fast;
one test (TASK-16) sleeps the real default delays.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from celery_trigger import retry
from celery_trigger.errors import AbortTaskRunError


@dataclass
class Reply:
    """One scripted answer; ``hang_s`` > 0 means "say nothing for that long, then hang up"."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang_s: float = 0.0


@dataclass
class Seen:
    at: float
    method: str
    retry_count: str | None
    headers: dict[str, str]
    body: bytes


class ScriptedServer:
    """Answers requests with ``script`` in order, repeating the last reply when it runs out."""

    def __init__(self) -> None:
        self.script: list[Reply] = [Reply()]
        self.seen: list[Seen] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = False  # so server_close() joins every handler thread
        self._httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.02,), daemon=True
        )  # a short poll makes shutdown() quick

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/endpoint"

    def take(self, seen: Seen) -> Reply:
        with self._lock:
            self.seen.append(seen)
            return self.script[min(len(self.seen), len(self.script)) - 1]

    def retry_counts(self) -> list[str | None]:
        return [s.retry_count for s in self.seen]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()  # wakes handlers that are "hanging"
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


def _handler_for(server: ScriptedServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        timeout = 5  # an idle keep-alive connection cannot hold up shutdown for long

        def answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            reply = server.take(
                Seen(
                    time.monotonic(),
                    self.command,
                    self.headers.get("x-retry-count"),
                    dict(self.headers),
                    body,
                )
            )
            if reply.hang_s:
                server.stopping.wait(reply.hang_s)
                self.close_connection = True
                return
            payload = (
                reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            )
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = answer

        def log_message(self, format: str, *args: Any) -> None:  # the stdlib's signature
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    srv = ScriptedServer()
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the pauses of ``retry`` (in seconds) instead of sleeping them."""
    pauses: list[float] = []

    async def record_async(seconds: float) -> None:
        pauses.append(seconds)

    monkeypatch.setattr(retry, "_sleep", pauses.append)
    monkeypatch.setattr(retry, "_async_sleep", record_async)
    return pauses


# --- on_throw ---------------------------------------------------------------------------------


def test_on_throw_retries_until_fn_succeeds(slept: list[float]) -> None:
    """TASK-15: failing twice then succeeding calls fn with attempt 1, 2, 3; returns result 3."""
    # Given a function that fails on its first two tries
    seen: list[retry.ThrowContext] = []

    def flaky(ctx: retry.ThrowContext) -> str:
        seen.append(ctx)
        if ctx.attempt < 3:
            raise RuntimeError(f"boom {ctx.attempt}")
        return f"ok {ctx.attempt}"

    # When it runs under on_throw with 3 attempts and fixed delays
    result = retry.on_throw(flaky, max_attempts=3, randomize=False)
    # Then fn saw attempts 1..3, the third result is returned, and the pauses were 1 s and 2 s
    assert [c.attempt for c in seen] == [1, 2, 3]
    assert all(c.max_attempts == 3 for c in seen)
    assert result == "ok 3"
    assert slept == [1.0, 2.0]


def test_on_throw_rethrows_the_last_error_object(slept: list[float]) -> None:
    """TASK-15: when all three tries fail, the third error object itself is re-raised."""
    # Given a function that always fails with a new error object
    errors: list[Exception] = []

    def always_fails(ctx: retry.ThrowContext) -> None:
        errors.append(ValueError(f"failure {ctx.attempt}"))
        raise errors[-1]

    # When it runs under on_throw
    with pytest.raises(ValueError) as caught:
        retry.on_throw(always_fails, max_attempts=3, randomize=False)
    # Then exactly three tries happened and the last error object is what surfaced
    assert len(errors) == 3
    assert caught.value is errors[2]
    assert len(slept) == 2


def test_on_throw_does_not_retry_abort_task_run_error(slept: list[float]) -> None:
    """§1.4: an AbortTaskRunError thrown by fn is re-raised at once, without retrying."""
    # Given a function that aborts
    calls: list[int] = []

    def aborts(ctx: retry.ThrowContext) -> None:
        calls.append(ctx.attempt)
        raise AbortTaskRunError("stop")

    # When it runs under on_throw with 5 attempts
    with pytest.raises(AbortTaskRunError, match="stop"):
        retry.on_throw(aborts, max_attempts=5)
    # Then it ran once and never paused
    assert calls == [1]
    assert slept == []


def test_on_throw_awaits_async_functions(slept: list[float]) -> None:
    """TASK-15 for ``async def`` fn: on_throw returns a coroutine with the same semantics."""
    # Given an async function that fails once
    attempts: list[int] = []

    async def flaky(ctx: retry.ThrowContext) -> int:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise ConnectionError("first try")
        return ctx.attempt * 10

    # When on_throw's coroutine is awaited
    result = asyncio.run(
        retry.on_throw(flaky, max_attempts=3, min_timeout_in_ms=50, randomize=False)
    )
    # Then the second try's result comes back after one 50 ms pause
    assert (attempts, result, slept) == ([1, 2], 20, [0.05])


def test_on_throw_validates_its_options_before_calling_fn() -> None:
    """D-13: bad retry options raise at the call, before fn runs."""
    # Given a function that must not be called
    calls: list[int] = []
    # When on_throw gets an impossible option or a non-callable
    # Then it raises and fn never ran
    with pytest.raises(ValueError, match="max_attempts"):
        retry.on_throw(lambda ctx: calls.append(1), max_attempts=0)
    with pytest.raises(TypeError, match="callable"):
        retry.on_throw("not a function")  # type: ignore[call-overload]
    assert calls == []


# --- fetch ------------------------------------------------------------------------------------


def test_fetch_retries_503_with_default_backoff_until_200(server: ScriptedServer) -> None:
    """TASK-16: default options; 503, 503, 200 yields the 200 on request 3 (x-retry-count 1,2,3),
    after real pauses of [1, 2) s and [2, 4) s (TASK-2 bounds)."""
    # Given an endpoint that answers 503 twice and then 200
    server.script = [Reply(503), Reply(503), Reply(200, {"ok": True})]
    # When it is fetched with the default retry options
    response = retry.fetch(server.url)
    # Then the third request's 200 is returned and each request carried its attempt number
    assert response.status_code == 200
    assert response.json() == {"ok": True}
    assert server.retry_counts() == ["1", "2", "3"]
    first_gap = server.seen[1].at - server.seen[0].at
    second_gap = server.seen[2].at - server.seen[1].at
    assert 1.0 <= first_gap < 2.5
    assert 2.0 <= second_gap < 4.5


def test_fetch_returns_the_last_503_when_retries_run_out(
    server: ScriptedServer, slept: list[float]
) -> None:
    """TASK-16, D-2: an endpoint that always answers 503 gets exactly 3 requests and the third
    503 response is returned, not raised."""
    # Given an endpoint that always answers 503
    server.script = [Reply(503, b"busy 1"), Reply(503, b"busy 2"), Reply(503, b"busy 3")]
    # When it is fetched with the default retry options
    response = retry.fetch(server.url)
    # Then three requests were made and the last answer came back as a response
    assert server.retry_counts() == ["1", "2", "3"]
    assert response.status_code == 503
    assert response.content == b"busy 3"
    assert 1.0 <= slept[0] <= 2.0 and 2.0 <= slept[1] <= 4.0 and len(slept) == 2


def test_fetch_never_sends_more_than_ten_requests(
    server: ScriptedServer, slept: list[float]
) -> None:
    """TASK-17: a by_status strategy with max_attempts 50 still stops at 10 requests."""
    # Given an endpoint that always fails and a strategy that allows 50 attempts
    server.script = [Reply(500)]
    policy = {"5xx": {"strategy": "backoff", "max_attempts": 50, "min_timeout_in_ms": 1}}
    # When it is fetched
    response = retry.fetch(server.url, retry={"by_status": policy})
    # Then exactly 10 requests were sent and the 10th answer is returned
    assert server.retry_counts() == [str(n) for n in range(1, 11)]
    assert response.status_code == 500
    assert len(slept) == 9


def test_fetch_raises_after_the_default_timeout_budget(
    server: ScriptedServer, slept: list[float]
) -> None:
    """TASK-18: timeout_in_ms=100 against an endpoint that never answers raises after the
    retry.timeout budget, 3 tries by default."""
    # Given an endpoint that stays silent for a second
    server.script = [Reply(hang_s=1.0)]
    # When it is fetched with a 100 ms timeout per try
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        retry.fetch(server.url, timeout_in_ms=100)
    # Then three tries were made, each cut short, with the default back-off between them
    assert time.monotonic() - started < 1.0
    assert server.retry_counts() == ["1", "2", "3"]
    assert len(slept) == 2 and 1.0 <= slept[0] <= 2.0


def test_fetch_timeout_budget_is_configurable(server: ScriptedServer) -> None:
    """TASK-18 with retry.timeout given: its max_attempts sets the number of tries (real sleeps)."""
    # Given a silent endpoint and a two-try timeout budget with short pauses
    server.script = [Reply(hang_s=1.0)]
    budget = {"max_attempts": 2, "min_timeout_in_ms": 20, "randomize": False}
    # When it is fetched
    with pytest.raises(httpx.ReadTimeout):
        retry.fetch(server.url, timeout_in_ms=100, retry={"timeout": budget})
    # Then exactly two requests reached the server
    assert server.retry_counts() == ["1", "2"]


def test_fetch_retries_connection_errors_then_raises(slept: list[float]) -> None:
    """§1.4: connection errors retry under retry.connection_error (default 3 tries), then raise."""
    # Given a port nobody listens on
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # When it is fetched
    with pytest.raises(httpx.ConnectError):
        retry.fetch(f"http://127.0.0.1:{port}/", retry={"connection_error": {"max_attempts": 4}})
    # Then the connection_error budget decided the pauses: three, for four tries
    assert len(slept) == 3


def test_fetch_returns_unmatched_statuses_at_once(server: ScriptedServer) -> None:
    """§1.4: a non-2xx status no strategy matches (404 under the defaults) is returned at once."""
    # Given an endpoint that answers 404
    server.script = [Reply(404, b"missing")]
    # When it is fetched
    response = retry.fetch(server.url)
    # Then one request was made and its answer returned
    assert (response.status_code, server.retry_counts()) == (404, ["1"])


def test_fetch_checks_status_patterns_in_insertion_order(
    server: ScriptedServer, slept: list[float]
) -> None:
    """§1.4: by_status keys are checked in insertion order; the first match decides."""
    # Given two patterns matching 503, the first allowing no retry
    server.script = [Reply(503), Reply(200)]
    policy = {
        "5xx": {"strategy": "backoff", "max_attempts": 1},
        "503": {"strategy": "backoff", "max_attempts": 3},
    }
    # When it is fetched
    response = retry.fetch(server.url, retry={"by_status": policy})
    # Then the first pattern won: no retry
    assert (response.status_code, server.retry_counts(), slept) == (503, ["1"], [])


@pytest.mark.parametrize("pattern", ["429", "400-499", "4xx", "42x", "503,429", "all"])
def test_fetch_understands_every_status_pattern_form(
    server: ScriptedServer, slept: list[float], pattern: str
) -> None:
    """§1.4: exact, range, class, trailing-x prefix, comma list and "all" all match 429."""
    # Given an endpoint that answers 429 once
    server.script = [Reply(429), Reply(200)]
    # When it is fetched with the pattern under test
    policy = {pattern: {"strategy": "backoff", "min_timeout_in_ms": 1}}
    response = retry.fetch(server.url, retry={"by_status": policy})
    # Then the 429 was retried
    assert (response.status_code, server.retry_counts()) == (200, ["1", "2"])


def test_fetch_headers_strategy_waits_until_the_reset(server: ScriptedServer) -> None:
    """§1.4 "headers" strategy: retry at the instant the reset header names (real sleep)."""
    # Given a 429 whose reset header says "in 300 ms", then a 200
    server.script = [Reply(429, headers={"x-reset": "300ms"}), Reply(200)]
    policy = {
        "429": {
            "strategy": "headers",
            "limit_header": "x-limit",
            "remaining_header": "x-remaining",
            "reset_header": "x-reset",
            "reset_format": "iso_8601_duration_openai_variant",
        }
    }
    # When it is fetched
    response = retry.fetch(server.url, retry={"by_status": policy})
    # Then the second request came after the reset
    assert response.status_code == 200
    assert server.seen[1].at - server.seen[0].at >= 0.29


def test_fetch_headers_strategy_without_reset_header_returns_the_response(
    server: ScriptedServer,
) -> None:
    """§1.4: if the reset header is missing or unreadable the response is returned."""
    # Given a 429 without the reset header, and one with a garbled reset header
    policy = {
        "429": {
            "strategy": "headers",
            "limit_header": "x-limit",
            "remaining_header": "x-remaining",
            "reset_header": "x-reset",
        }
    }
    for reply in (Reply(429), Reply(429, headers={"x-reset": "soon"})):
        server.script, server.seen = [reply, Reply(200)], []
        # When it is fetched
        response = retry.fetch(server.url, retry={"by_status": policy})
        # Then the 429 is the answer
        assert (response.status_code, server.retry_counts()) == (429, ["1"])


def test_fetch_body_filter_selects_the_strategy(server: ScriptedServer, slept: list[float]) -> None:
    """§1.4 body_filter: a strategy applies only when the JSON body matches its filter."""
    policy = {
        "429": {
            "strategy": "backoff",
            "min_timeout_in_ms": 1,
            "body_filter": {"error": {"type": ["rate_limit", "overloaded"]}},
        }
    }
    # Given a 429 whose body matches the filter
    server.script = [Reply(429, {"error": {"type": "rate_limit"}}), Reply(200)]
    # When it is fetched, Then it is retried
    assert retry.fetch(server.url, retry={"by_status": policy}).status_code == 200
    # Given a 429 whose body does not match (another type, or no JSON at all)
    for body in ({"error": {"type": "quota"}}, b"<html>", {"message": "x"}):
        server.script, server.seen = [Reply(429, body), Reply(200)], []
        # When it is fetched, Then the 429 is returned after one request
        response = retry.fetch(server.url, retry={"by_status": policy})
        assert (response.status_code, server.retry_counts()) == (429, ["1"])


def test_fetch_sends_method_body_and_headers_on_every_try(
    server: ScriptedServer, slept: list[float]
) -> None:
    """§1.4: every try is the same request plus its own x-retry-count header."""
    # Given an endpoint that fails once
    server.script = [Reply(502), Reply(201)]
    # When a POST with a JSON body and a custom header is fetched
    response = retry.fetch(
        server.url, method="post", json={"n": 1}, headers={"authorization": "Bearer t"}
    )
    # Then both tries carried method, body and header, and distinct retry counts
    assert response.status_code == 201
    assert [s.method for s in server.seen] == ["POST", "POST"]
    assert all(json.loads(s.body) == {"n": 1} for s in server.seen)
    assert all(s.headers.get("authorization") == "Bearer t" for s in server.seen)
    assert server.retry_counts() == ["1", "2"]


def test_fetch_async_shares_the_retry_rules(server: ScriptedServer, slept: list[float]) -> None:
    """TASK-16 for fetch_async: 503 then 200 yields the 200 on the 2nd request."""
    # Given an endpoint that answers 503 once
    server.script = [Reply(503), Reply(200, b"fine")]
    # When it is fetched from async code
    response = asyncio.run(retry.fetch_async(server.url))
    # Then the retry happened with one default pause
    assert (response.status_code, response.content) == (200, b"fine")
    assert server.retry_counts() == ["1", "2"]
    assert len(slept) == 1 and 1.0 <= slept[0] <= 2.0


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"method": 5}, TypeError, "method"),
        ({"method": "GE T"}, ValueError, "method"),
        ({"retry": {"by_code": {}}}, ValueError, "unknown key"),
        ({"retry": ["5xx"]}, TypeError, "retry must be a dict"),
        ({"retry": {"by_status": {"5x": {"strategy": "backoff"}}}}, ValueError, "status pattern"),
        ({"retry": {"by_status": {"500": {"strategy": "wait"}}}}, ValueError, "strategy"),
        (
            {"retry": {"by_status": {"500": {"strategy": "backoff", "tries": 2}}}},
            ValueError,
            "unknown key",
        ),
        (
            {"retry": {"by_status": {"500": {"strategy": "backoff", "factor": -1}}}},
            ValueError,
            "factor",
        ),
        ({"retry": {"by_status": {"429": {"strategy": "headers"}}}}, ValueError, "reset_header"),
        (
            {
                "retry": {
                    "by_status": {
                        "429": {"strategy": "headers", "reset_header": "r", "reset_format": "rfc"}
                    }
                }
            },
            ValueError,
            "reset_format",
        ),
        (
            {"retry": {"by_status": {"429": {"strategy": "backoff", "body_filter": {"a": "b"}}}}},
            ValueError,
            "allowed values",
        ),
        ({"retry": {"timeout": {"max_attempts": 0}}}, ValueError, "max_attempts"),
        ({"timeout_in_ms": 0}, ValueError, "timeout_in_ms"),
        ({"timeout_in_ms": 100, "timeout": 5}, TypeError, "timeout"),
    ],
)
def test_fetch_rejects_bad_arguments_before_any_request(
    server: ScriptedServer, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """D-13: a bad method or retry option raises ValueError/TypeError before anything is sent."""
    # Given a live endpoint
    # When fetch gets a bad argument
    with pytest.raises(error, match=message):
        retry.fetch(server.url, **kwargs)
    # Then no request reached the server
    assert server.seen == []
