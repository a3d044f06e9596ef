"""Durable waits inside a run and waitpoint tokens (``ct.wait.*``, SEMANTICS §7).

Example::

    @ct.task(id="approval")
    def approval(payload, ctx):
        token = ct.wait.create_token(timeout="1d", tags=[f"order:{payload['id']}"])
        notify_reviewer(token.url)
        result = ct.wait.for_token(token)
        return "approved" if result.ok and result.output["approved"] else "rejected"

Waits longer than ``trigger_wait_threshold`` (5 s) park the run: it holds no worker and no
concurrency slot until it resumes. Code before the wait re-executes on resume with every
celery-trigger operation answered from the run's journal; wrap other side effects in
``ct.steps.run``.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ._engine import journal, waits
from ._engine import tokens as _tokens
from ._engine.engine import current
from ._engine.tokens import TokenRecord, WaitResult, WaitToken
from .auth import _sign
from .errors import TokenNotFoundError
from .options import MAX_TAGS, resolve_delay, resolve_idempotency_ttl, to_seconds, utcnow

_UNITS = (
    ("seconds", 1),
    ("minutes", 60),
    ("hours", 3600),
    ("days", 86400),
    ("weeks", 604800),
    ("months", 30 * 86400),
    ("years", 365 * 86400),
)


def for_(
    duration: timedelta | None = None,
    *,
    seconds: float | None = None,
    minutes: float | None = None,
    hours: float | None = None,
    days: float | None = None,
    weeks: float | None = None,
    months: float | None = None,
    years: float | None = None,
    idempotency_key: str | None = None,
    idempotency_key_ttl: Any = None,
) -> None:
    """Wait for a duration. Exactly one unit counts: the first of seconds → years given.

    Example: ``ct.wait.for_(minutes=10)`` or ``ct.wait.for_(timedelta(hours=1))``.
    """
    values = {
        "seconds": seconds,
        "minutes": minutes,
        "hours": hours,
        "days": days,
        "weeks": weeks,
        "months": months,
        "years": years,
    }
    total: float | None = None
    if duration is not None:
        total = to_seconds(duration, name="wait.for_ duration")
    else:
        for name, size in _UNITS:
            value = values[name]
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise TypeError(f"wait.for_({name}=...) must be a number")
                total = float(value) * size
                break
    if total is None:
        raise TypeError(
            "wait.for_ needs a timedelta or one of seconds=, minutes=, hours=, "
            "days=, weeks=, months=, years="
        )
    ttl = resolve_idempotency_ttl(idempotency_key_ttl)
    waits.wait_duration(total, idempotency_key=_key(idempotency_key), idempotency_key_ttl=ttl)


def until(
    date: datetime,
    *,
    throw_if_in_the_past: bool = False,
    idempotency_key: str | None = None,
    idempotency_key_ttl: Any = None,
) -> None:
    """Wait until an aware datetime. A past date returns at once (or raises if asked to)."""
    if not isinstance(date, datetime) or date.tzinfo is None:
        raise ValueError("wait.until needs a timezone-aware datetime")
    remaining = (date - utcnow()).total_seconds()
    if remaining < 0 and throw_if_in_the_past:
        raise ValueError("Date is in the past")
    waits.wait_duration(
        max(0.0, remaining),
        idempotency_key=_key(idempotency_key),
        idempotency_key_ttl=resolve_idempotency_ttl(idempotency_key_ttl),
        what="wait.until",
    )


def _key(key: str | None) -> str | None:
    if key is None:
        return None
    if not isinstance(key, str) or not key or len(key) > 2048:
        raise ValueError("idempotency_key must be a non-empty string of at most 2048 characters")
    return key


def create_token(
    *,
    timeout: Any = None,
    idempotency_key: str | None = None,
    idempotency_key_ttl: Any = None,
    tags: str | Sequence[str] | None = None,
) -> WaitToken:
    """Create a waitpoint token that something outside the run completes (anywhere).

    Example: ``token = ct.wait.create_token(timeout="10m"); send(token.url)``.
    """
    engine = current()
    tag_list = _token_tags(tags)
    due = resolve_delay(timeout, utcnow()) if timeout is not None else None
    timeout_ms = int(due.timestamp() * 1000) if due is not None else None
    key = _key(idempotency_key)
    ttl = resolve_idempotency_ttl(idempotency_key_ttl)
    token_id, cached = journal.token_id_for_run(
        lambda tid: _tokens.create(
            engine, tid, timeout_ms=timeout_ms, key=key, key_ttl_s=ttl, tags=tag_list
        )
    )
    secret = engine.settings.secret_key
    pat = (
        _sign(secret, [f"write:waitpoints:{token_id}"], _tokens.TOKEN_TOKEN_TTL_S)
        if secret
        else None
    )
    return WaitToken(
        id=token_id,
        url=_tokens.callback_url(engine, token_id),
        is_cached=cached,
        public_access_token=pat,
    )


#: Token tags may be longer than run tags (SEMANTICS §7.2: ≤ 128 characters, ≤ 10 tags).
MAX_TOKEN_TAG_LENGTH = 128


def _token_tags(tags: str | Sequence[str] | None) -> builtins.list[str]:
    """Blank tags dropped, duplicates removed, at most 10 of at most 128 characters."""
    items = [] if tags is None else [tags] if isinstance(tags, str) else tags
    if not isinstance(items, (builtins.list, tuple)):
        raise TypeError(f"tags must be a string or a list of strings, not {type(tags).__name__}")
    out: builtins.list[str] = []
    for tag in items:
        if not isinstance(tag, str):
            raise TypeError(f"tags must be strings, got {tag!r}")
        if len(tag) > MAX_TOKEN_TAG_LENGTH:
            raise ValueError(
                f"tag {tag[:20]!r}... is {len(tag)} characters; the limit is {MAX_TOKEN_TAG_LENGTH}"
            )
        if tag.strip() and tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise ValueError(
            f"Waitpoints can only have {MAX_TAGS} tags, you're trying to set {len(out)}."
        )
    return out


def _token_id(token: WaitToken | TokenRecord | str | dict[str, Any]) -> str:
    if isinstance(token, (WaitToken, TokenRecord)):
        return token.id
    if isinstance(token, dict) and isinstance(value := token.get("id"), str):
        return value
    if isinstance(token, str) and token:
        return token
    raise TypeError("token must be a WaitToken, a token id or a name")


def for_token(
    token: WaitToken | str | dict[str, Any], *, timeout_in_seconds: float | None = None
) -> WaitResult:
    """Park until the token is completed or times out (inside a run only).

    ``token`` is a ``WaitToken``, a token id, or a name: a name acts as
    ``create_token(idempotency_key=name, timeout=timeout_in_seconds)``.
    """
    engine = current()
    token_id = _token_id(token)
    if not token_id.startswith("waitpoint_"):
        token_id = create_token(idempotency_key=token_id, timeout=timeout_in_seconds).id
    elif not _tokens.exists(engine, token_id):
        raise TokenNotFoundError(f"no waitpoint token with id {token_id!r}")
    return _tokens.to_wait_result(waits.wait_token(token_id))


def complete_token(token: WaitToken | str | dict[str, Any], data: Any = None) -> dict[str, bool]:
    """Complete a token (anywhere). First completion wins; later ones change nothing."""
    _tokens.complete(current(), _token_id(token), data)
    return {"success": True}


def retrieve_token(token: WaitToken | str | dict[str, Any]) -> TokenRecord:
    """The token's status, output (once completed) and timeout."""
    return _tokens.retrieve(current(), _token_id(token))


def list_tokens(
    *,
    status: str | Sequence[str] | None = None,
    tags: str | Sequence[str] | None = None,
    idempotency_key: str | None = None,
    limit: int = 25,
) -> builtins.list[TokenRecord]:
    """Tokens newest first (without output), filtered by status, tags and key."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
        raise ValueError("limit must be between 1 and 100")
    engine = current()
    statuses = {status} if isinstance(status, str) else set(status or [])
    bad = statuses - set(_tokens.TOKEN_STATUSES)
    if bad:
        raise ValueError(f"unknown token status(es): {', '.join(sorted(bad))}")
    tag_list = [tags] if isinstance(tags, str) else builtins.list(tags or [])
    return _tokens.list_records(
        engine,
        statuses=statuses,
        tags=tag_list,
        idempotency_key=idempotency_key,
        limit=limit,
    )


__all__ = [
    "TokenRecord",
    "WaitResult",
    "WaitToken",
    "complete_token",
    "create_token",
    "for_",
    "for_token",
    "list_tokens",
    "retrieve_token",
    "until",
]
