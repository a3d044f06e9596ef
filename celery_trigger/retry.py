"""Retry helpers for code inside a run: ``retry.on_throw`` and ``retry.fetch`` (SEMANTICS §1.4).

Invariants: ``on_throw`` calls ``fn`` at most ``max_attempts`` times and re-raises
``AbortTaskRunError`` at once, or the last exception object itself after the last try.
``fetch`` sends at most ``FETCH_MAX_REQUESTS`` requests, each with ``x-retry-count: <attempt>``,
returns a 2xx answer at once and a non-2xx one when no ``by_status`` strategy matches or retries
run out (D-2); only timeouts and connection errors raise. Delays come from ``_engine.backoff``,
pauses go through ``_sleep``/``_async_sleep``, and arguments are checked before the first try.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, overload

import httpx

from celery_trigger._engine import journal, waits
from celery_trigger._engine.backoff import RESET_FORMATS, next_retry_delay_ms, reset_delay_ms
from celery_trigger._engine.state import current_state
from celery_trigger.errors import AbortTaskRunError
from celery_trigger.options import RetryOptions, coerce_retry

T = TypeVar("T")

# Pauses outside a run go through these names (looked up at call time). Inside a run a sync
# ``on_throw`` pauses with a durable wait instead: above trigger_wait_threshold it parks (§7, D-10).
_sleep: Callable[[float], None] = time.sleep
_async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

#: ``fetch`` never sends more requests than this, whatever the retry options say.
FETCH_MAX_REQUESTS = 10
_DEFAULT_BY_STATUS = {"429,408,409,5xx": {"strategy": "backoff"}}
_RETRY_KEYS = frozenset({"by_status", "timeout", "connection_error"})
_OPTION_KEYS = frozenset(RetryOptions.__dataclass_fields__)
_BACKOFF_KEYS = _OPTION_KEYS | {"strategy", "body_filter"}
# limit_header and remaining_header are accepted for parity with upstream but not consulted.
_HEADERS_KEYS = frozenset(
    {"strategy", "body_filter", "limit_header", "remaining_header", "reset_header", "reset_format"}
)
_REQUEST_KWARGS = frozenset(
    {
        "content",
        "data",
        "files",
        "json",
        "params",
        "headers",
        "cookies",
        "auth",
        "follow_redirects",
        "extensions",
    }
)
_CONNECTION_ERRORS = (httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError)
_STATUS_ITEM = re.compile(r"\d{3}(?:-\d{3})?|\d\dx|\dxx")
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class ThrowContext:
    """What ``on_throw`` passes to ``fn``: e.g. ``ThrowContext(attempt=2, max_attempts=3)``."""

    attempt: int
    max_attempts: int


@overload
def on_throw(
    fn: Callable[[ThrowContext], Coroutine[Any, Any, T]],
    *,
    max_attempts: int = ...,
    factor: float = ...,
    min_timeout_in_ms: int = ...,
    max_timeout_in_ms: int = ...,
    randomize: bool = ...,
) -> Coroutine[Any, Any, T]: ...
@overload
def on_throw(
    fn: Callable[[ThrowContext], T],
    *,
    max_attempts: int = ...,
    factor: float = ...,
    min_timeout_in_ms: int = ...,
    max_timeout_in_ms: int = ...,
    randomize: bool = ...,
) -> T: ...
def on_throw(
    fn: Callable[[ThrowContext], Any],
    *,
    max_attempts: int = 3,
    factor: float = 2,
    min_timeout_in_ms: int = 1000,
    max_timeout_in_ms: int = 60000,
    randomize: bool = True,
) -> Any:
    """Call ``fn(ThrowContext)`` until it returns, backing off between failed tries.

    For an ``async def`` fn this returns a coroutine to await. Example:
    ``user = retry.on_throw(lambda ctx: api.get_user(7), max_attempts=5)``.
    """
    if not callable(fn):
        raise TypeError(f"on_throw needs a callable, not {type(fn).__name__}")
    opts = RetryOptions(
        max_attempts=max_attempts,
        factor=factor,
        randomize=randomize,
        min_timeout_in_ms=min_timeout_in_ms,
        max_timeout_in_ms=max_timeout_in_ms,
    )
    if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__):
        return _on_throw_async(fn, opts)
    if current_state() is not None:
        return _on_throw_in_run(fn, opts)
    attempt = 1
    while True:
        try:
            return fn(ThrowContext(attempt, opts.max_attempts))
        except Exception as exc:
            delay_ms = _delay_after_throw(exc, opts, attempt)
        _sleep(delay_ms / 1000)
        attempt += 1


async def _on_throw_async(fn: Callable[[ThrowContext], Awaitable[Any]], opts: RetryOptions) -> Any:
    for attempt in range(1, opts.max_attempts + 1):
        try:
            return await fn(ThrowContext(attempt, opts.max_attempts))
        except Exception as exc:
            delay_ms = _delay_after_throw(exc, opts, attempt)
        await _async_sleep(delay_ms / 1000)
    raise AssertionError("unreachable: the last failure re-raises")  # pragma: no cover


def _on_throw_in_run(fn: Callable[[ThrowContext], Any], opts: RetryOptions) -> Any:
    """``on_throw`` inside a run: each failed try and its pause are journaled, and the pause
    is a durable wait (a pause above the wait threshold parks the run, §1.4). On replay a
    try that failed before the park is not called again; its recorded verdict is used."""
    for attempt in range(1, opts.max_attempts + 1):
        box: dict[str, Any] = {}
        verdict = journal.step(
            f"retry.on_throw#{attempt}", _journaled_try, (fn, opts, attempt, box), {}
        )
        if "value" in box:
            return box["value"]
        if verdict["ok"]:  # replaying a try that succeeded before a later wait: call again
            return fn(ThrowContext(attempt, opts.max_attempts))
        if verdict["delay_ms"] is None:
            raise box.get("error") or _replayed_error(verdict)
        waits.wait_duration(verdict["delay_ms"] / 1000, what="retry.on_throw")
    raise AssertionError("unreachable: the last failure re-raises")  # pragma: no cover


def _journaled_try(
    fn: Callable[[ThrowContext], Any], opts: RetryOptions, attempt: int, box: dict[str, Any]
) -> dict[str, Any]:
    try:
        box["value"] = fn(ThrowContext(attempt, opts.max_attempts))
        return {"ok": True}
    except Exception as exc:
        box["error"] = exc
        abort = isinstance(exc, AbortTaskRunError)
        delay = None if abort else next_retry_delay_ms(opts, attempt)
        return {"ok": False, "delay_ms": delay, "abort": abort, "message": str(exc)}


def _replayed_error(verdict: Mapping[str, Any]) -> Exception:
    message = str(verdict.get("message", ""))
    return AbortTaskRunError(message) if verdict.get("abort") else RuntimeError(message)


def _delay_after_throw(exc: Exception, opts: RetryOptions, attempt: int) -> int:
    """The pause before the next try; re-raises ``exc`` itself when there is no next try."""
    delay = None if isinstance(exc, AbortTaskRunError) else next_retry_delay_ms(opts, attempt)
    if delay is None:
        raise exc
    return delay


def _filter_matches(payload: Any, flt: Mapping[str, Any]) -> bool:
    """Trigger.dev event-filter subset: nested dicts, leaf lists of allowed values."""
    if not isinstance(payload, dict):
        return not flt
    for key, allowed in flt.items():
        value = payload.get(key)
        if isinstance(allowed, Mapping):
            candidates = value if isinstance(value, list) else [value]
            if not any(_filter_matches(v, allowed) for v in candidates):
                return False
        elif allowed and (key not in payload or value not in allowed):
            return False
    return True


@dataclass(frozen=True)
class _Strategy:
    """One validated ``by_status`` entry; ``statuses`` are inclusive ranges ("5xx" = 500-599)."""

    statuses: tuple[tuple[int, int], ...]
    backoff: RetryOptions | None  # None means the "headers" strategy
    reset_header: str = ""
    reset_format: str = "unix_timestamp_in_ms"
    body_filter: Mapping[str, Any] | None = None

    def matches(self, response: httpx.Response) -> bool:
        if not any(low <= response.status_code <= high for low, high in self.statuses):
            return False
        try:  # like upstream, a strategy with a body filter needs a JSON body to match
            return self.body_filter is None or _filter_matches(
                json.loads(response.content), self.body_filter
            )
        except ValueError:
            return False

    def delay_ms(self, response: httpx.Response, attempt: int) -> float | None:
        if self.backoff is not None:
            return next_retry_delay_ms(self.backoff, attempt)
        return reset_delay_ms(response.headers.get(self.reset_header), self.reset_format)


def _reject_unknown(value: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    if unknown := set(value) - allowed:
        raise ValueError(
            f"unknown key(s) in {where}: {', '.join(sorted(map(str, unknown)))}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def _check_filter(flt: Any, where: str) -> None:
    if not isinstance(flt, Mapping):
        raise TypeError(f"{where} must be a dict, not {type(flt).__name__}")
    for key, allowed in flt.items():
        if isinstance(allowed, Mapping):
            _check_filter(allowed, f"{where}[{key!r}]")
        elif not isinstance(allowed, (list, tuple)) or any(
            not isinstance(v, (str, int, float, bool, type(None))) for v in allowed
        ):
            raise ValueError(f"{where}[{key!r}] must be a list of allowed values or a dict")


def _status_ranges(pattern: Any) -> tuple[tuple[int, int], ...]:
    if pattern == "all":
        return ((0, 999),)
    items = [i.strip() for i in pattern.split(",")] if isinstance(pattern, str) else [""]
    if not all(_STATUS_ITEM.fullmatch(item) for item in items):
        raise ValueError(
            f"bad status pattern {pattern!r} in retry['by_status']: use '429', "
            "'500-599', '5xx', '40x', '429,503' or 'all'"
        )
    return tuple((int(i[:3].replace("x", "0")), int(i[-3:].replace("x", "9"))) for i in items)


def _strategy(pattern: Any, spec: Any) -> _Strategy:
    where = f"retry['by_status'][{pattern!r}]"
    if not isinstance(spec, Mapping):
        raise TypeError(f"{where} must be a dict, not {type(spec).__name__}")
    kind = spec.get("strategy")
    if kind not in ("backoff", "headers"):
        raise ValueError(f"{where}['strategy'] must be 'backoff' or 'headers', got {kind!r}")
    _reject_unknown(spec, _BACKOFF_KEYS if kind == "backoff" else _HEADERS_KEYS, where)
    statuses, body_filter = _status_ranges(pattern), spec.get("body_filter")
    if body_filter is not None:
        _check_filter(body_filter, f"{where}['body_filter']")
    if kind == "backoff":
        opts = coerce_retry({k: v for k, v in spec.items() if k in _OPTION_KEYS})
        return _Strategy(statuses, opts, body_filter=body_filter)
    reset_header, fmt = spec.get("reset_header"), spec.get("reset_format", RESET_FORMATS[0])
    if not isinstance(reset_header, str) or not reset_header:
        raise ValueError(f"{where} needs 'reset_header' (a header name) for 'headers'")
    if fmt not in RESET_FORMATS:
        raise ValueError(f"{where}['reset_format'] must be one of {', '.join(RESET_FORMATS)}")
    return _Strategy(statuses, None, reset_header, fmt, body_filter)


class _FetchPlan:
    """The checked arguments of one ``fetch`` call and its retry decision after each try."""

    def __init__(
        self, url: Any, method: Any, retry: Any, timeout_in_ms: Any, httpx_kwargs: dict[str, Any]
    ) -> None:
        if not isinstance(url, (str, httpx.URL)):
            raise TypeError(f"url must be a string or httpx.URL, not {type(url).__name__}")
        if not isinstance(method, str) or not _METHOD.fullmatch(method):
            kind = ValueError if isinstance(method, str) else TypeError
            raise kind(f"method must be an HTTP method name such as 'GET', got {method!r}")
        retry = {} if retry is None else retry
        if not isinstance(retry, Mapping):
            raise TypeError(f"retry must be a dict, not {type(retry).__name__}")
        _reject_unknown(retry, _RETRY_KEYS, "retry")
        by_status = _DEFAULT_BY_STATUS if retry.get("by_status") is None else retry["by_status"]
        if not isinstance(by_status, Mapping):
            raise TypeError(f"retry['by_status'] must be a dict, not {type(by_status).__name__}")
        self.strategies = [_strategy(pattern, spec) for pattern, spec in by_status.items()]
        self.on_timeout = coerce_retry(retry.get("timeout")) or RetryOptions()
        self.on_connection_error = coerce_retry(retry.get("connection_error")) or RetryOptions()
        self.client_kwargs = {k: v for k, v in httpx_kwargs.items() if k not in _REQUEST_KWARGS}
        if timeout_in_ms is not None:
            if (
                isinstance(timeout_in_ms, bool)
                or not isinstance(timeout_in_ms, (int, float))
                or not timeout_in_ms > 0
            ):
                raise ValueError(f"timeout_in_ms must be a positive number, got {timeout_in_ms!r}")
            if "timeout" in self.client_kwargs:
                raise TypeError("pass either timeout_in_ms or an httpx timeout, not both")
            self.client_kwargs["timeout"] = httpx.Timeout(timeout_in_ms / 1000)
        self.client_kwargs.setdefault("timeout", None)  # like fetch(): no timeout unless asked
        self._request = {k: v for k, v in httpx_kwargs.items() if k in _REQUEST_KWARGS}
        self._request.update(method=method.upper(), url=url)
        self._headers = httpx.Headers(self._request.pop("headers", None))
        self.attempt = 1

    def request_args(self) -> dict[str, Any]:
        headers = self._headers.copy()
        headers["x-retry-count"] = str(self.attempt)
        return {**self._request, "headers": headers}

    def judge(self, outcome: httpx.Response | httpx.TransportError) -> httpx.Response | float:
        """The response to return or the seconds to pause; raises an error that ends the call."""
        attempt, self.attempt = self.attempt, self.attempt + 1
        if isinstance(outcome, httpx.Response):
            if outcome.is_success:
                return outcome
            strategy = next((s for s in self.strategies if s.matches(outcome)), None)
            delay = strategy.delay_ms(outcome, attempt) if strategy else None
        elif isinstance(outcome, (httpx.TimeoutException, *_CONNECTION_ERRORS)):
            timed_out = isinstance(outcome, httpx.TimeoutException)
            opts = self.on_timeout if timed_out else self.on_connection_error
            delay = next_retry_delay_ms(opts, attempt)
        else:
            raise outcome  # e.g. an unsupported URL scheme: retrying cannot help
        if delay is None or attempt >= FETCH_MAX_REQUESTS:
            if isinstance(outcome, Exception):
                raise outcome
            return outcome
        return delay / 1000


def fetch(
    url: str | httpx.URL,
    *,
    method: str = "GET",
    retry: Mapping[str, Any] | None = None,
    timeout_in_ms: float | None = None,
    **httpx_kwargs: Any,
) -> httpx.Response:
    """Send an HTTP request with httpx, retrying by status, timeout and connection error.

    Example: ``retry.fetch(url, retry={"by_status": {"5xx": {"strategy": "backoff"}}})``.
    """
    plan = _FetchPlan(url, method, retry, timeout_in_ms, httpx_kwargs)
    with httpx.Client(**plan.client_kwargs) as client:
        while True:
            try:
                verdict = plan.judge(client.request(**plan.request_args()))
            except httpx.TransportError as exc:  # judge() re-raises it if it ends the call
                verdict = plan.judge(exc)
            if isinstance(verdict, httpx.Response):
                return verdict
            _sleep(verdict)


async def fetch_async(
    url: str | httpx.URL,
    *,
    method: str = "GET",
    retry: Mapping[str, Any] | None = None,
    timeout_in_ms: float | None = None,
    **httpx_kwargs: Any,
) -> httpx.Response:
    """``fetch`` for ``async def`` code, on ``httpx.AsyncClient``.

    Example: ``resp = await retry.fetch_async("https://example.com", timeout_in_ms=2000)``.
    """
    plan = _FetchPlan(url, method, retry, timeout_in_ms, httpx_kwargs)
    async with httpx.AsyncClient(**plan.client_kwargs) as client:
        while not isinstance(
            verdict := plan.judge(await _outcome_async(client.request(**plan.request_args()))),
            httpx.Response,
        ):
            await _async_sleep(verdict)
        return verdict


async def _outcome_async(send: Awaitable[httpx.Response]) -> httpx.Response | httpx.TransportError:
    try:
        return await send
    except httpx.TransportError as exc:
        return exc


__all__ = ["FETCH_MAX_REQUESTS", "ThrowContext", "fetch", "fetch_async", "on_throw"]
