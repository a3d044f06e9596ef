"""Waitpoint tokens (SEMANTICS §7.2): create, complete (first wins), time out, read.

A token is a hash ``token:<id>``; runs parked on it are in its waiters set. Completion and
timeout go through one script each, then the waiters are notified (``waiters.py``). Reads
(one token, a filtered listing) return ``TokenRecord`` views.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Sequence, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .._serialization import dumps, loads
from .._vocab import TOKEN_MEMBER_PREFIX, WaitpointStatus
from ..errors import TokenNotFoundError, WaitpointTimeoutError
from ..result import ms_to_dt
from .engine import Engine
from .waiters import notify_waiters

logger = logging.getLogger("celery_trigger")
TOKEN_STATUSES = tuple(s.value for s in WaitpointStatus)
TOKEN_TOKEN_TTL_S = 24 * 3600


@dataclass(frozen=True)
class WaitToken:
    """What ``wait.create_token`` returns."""

    id: str
    url: str | None
    is_cached: bool = False
    public_access_token: str | None = None


@dataclass(frozen=True)
class TokenRecord:
    """A token as ``wait.retrieve_token`` returns it."""

    id: str
    url: str | None
    status: str
    created_at: datetime | None
    completed_at: datetime | None
    timeout_at: datetime | None
    idempotency_key: str | None
    idempotency_key_expires_at: datetime | None
    tags: list[str] = field(default_factory=list)
    output: Any = None
    error: WaitpointTimeoutError | None = None


@dataclass(frozen=True)
class WaitResult:
    """The outcome of ``wait.for_token``: ``ok`` with ``output``, or a timeout ``error``."""

    ok: bool
    output: Any = None
    error: WaitpointTimeoutError | None = None

    def unwrap(self) -> Any:
        if self.ok:
            return self.output
        assert self.error is not None
        raise self.error


def callback_hash(secret: str, token_id: str) -> str:
    return hmac.new(secret.encode(), token_id.encode(), hashlib.sha256).hexdigest()


def callback_url(engine: Engine, token_id: str) -> str | None:
    """The signed completion URL, or None without ``trigger_secret_key`` (it would be
    forgeable)."""
    if not engine.settings.secret_key:
        return None
    base = engine.settings.base_url.rstrip("/")
    digest = callback_hash(engine.settings.secret_key, token_id)
    return f"{base}/api/v1/waitpoints/tokens/{token_id}/callback/{digest}"


def _timeout_error(record: dict[str, str]) -> WaitpointTimeoutError:
    at = ms_to_dt(record.get("timeout_at"))
    return WaitpointTimeoutError(f"Waitpoint timed out at {at.isoformat() if at else '?'}")


def to_record(engine: Engine, rec: dict[str, str], *, with_output: bool = True) -> TokenRecord:
    status = rec.get("status", WaitpointStatus.WAITING.value)
    return TokenRecord(
        id=rec["id"],
        url=callback_url(engine, rec["id"]),
        status=status,
        created_at=ms_to_dt(rec.get("created")),
        completed_at=ms_to_dt(rec.get("completed_at")),
        timeout_at=ms_to_dt(rec.get("timeout_at")),
        idempotency_key=rec.get("idem") or None,
        idempotency_key_expires_at=ms_to_dt(rec.get("idem_exp")),
        tags=loads(rec.get("tags")) or [],
        output=loads(rec.get("output"))
        if with_output and status == WaitpointStatus.COMPLETED.value
        else None,
        error=_timeout_error(rec) if status == WaitpointStatus.TIMED_OUT.value else None,
    )


def to_wait_result(rec: dict[str, str]) -> WaitResult:
    if rec.get("status") == WaitpointStatus.COMPLETED.value:
        return WaitResult(ok=True, output=loads(rec.get("output")))
    return WaitResult(ok=False, error=_timeout_error(rec))


def create(
    engine: Engine,
    token_id: str,
    *,
    timeout_ms: int | None,
    key: str | None,
    key_ttl_s: float | None,
    tags: Sequence[str],
) -> tuple[str, bool]:
    now = int(time.time() * 1000)
    fields = {
        "id": token_id,
        "status": WaitpointStatus.WAITING.value,
        "created": str(now),
        "tags": dumps(list(tags)),
    }
    if timeout_ms is not None:
        fields["timeout_at"] = str(timeout_ms)
    if key is not None:
        fields["idem"] = key
        if key_ttl_s:
            fields["idem_exp"] = str(now + int(key_ttl_s * 1000))
    created = engine.store.create_token(
        token_id,
        now,
        key=key,
        key_ttl_ms=int((key_ttl_s or 0) * 1000),
        timeout_ms=timeout_ms,
        fields=fields,
        tags=tags,
    )
    return created.run_id, created.cached


def complete(engine: Engine, token_id: str, data: Any) -> bool:
    """Complete a token; the first completion (or timeout) wins. Returns whether it changed."""
    result, _ = engine.store.complete_token(
        token_id,
        int(time.time() * 1000),
        WaitpointStatus.COMPLETED.value,
        "output",
        dumps(data, what="data"),
    )
    if result == "missing":
        raise TokenNotFoundError(f"no waitpoint token with id {token_id!r}")
    if result == "ok":
        notify_waiters(engine, TOKEN_MEMBER_PREFIX + token_id)
    return bool(result == "ok")


def time_out(engine: Engine, token_id: str) -> bool:
    result, _ = engine.store.complete_token(
        token_id,
        int(time.time() * 1000),
        WaitpointStatus.TIMED_OUT.value,
        "error",
        dumps({"code": "TRIGGER_WAITPOINT_TIMEOUT"}),
    )
    if result == "ok":
        notify_waiters(engine, TOKEN_MEMBER_PREFIX + token_id)
    return bool(result == "ok")


# reads ---------------------------------------------------------------------------------
def exists(engine: Engine, token_id: str) -> bool:
    return engine.store.get_token(token_id) is not None


def retrieve(engine: Engine, token_id: str) -> TokenRecord:
    """The token's public view; ``TokenNotFoundError`` for an unknown id."""
    record = engine.store.get_token(token_id)
    if record is None:
        raise TokenNotFoundError(f"no waitpoint token with id {token_id!r}")
    return to_record(engine, record)


def list_records(
    engine: Engine,
    *,
    statuses: Set[str],
    tags: Sequence[str],
    idempotency_key: str | None,
    limit: int,
) -> list[TokenRecord]:
    """Up to ``limit`` tokens newest first (without output): of one of ``statuses`` (any when
    empty), carrying any of ``tags`` (any when empty), with ``idempotency_key`` (if given)."""
    out: list[TokenRecord] = []
    cursor: tuple[int, str] | None = None
    while len(out) < limit:
        ids = engine.store.list_token_ids(
            tag=tags[0] if tags else None, before=cursor, count=limit * 2
        )
        if not ids:
            break
        for token_id, score in ids:
            cursor = (score, token_id)
            rec = engine.store.get_token(token_id)
            if rec is None:
                continue
            item = to_record(engine, rec, with_output=False)
            if statuses and item.status not in statuses:
                continue
            if tags and not set(tags) & set(item.tags):
                continue
            if idempotency_key is not None and item.idempotency_key != idempotency_key:
                continue
            out.append(item)
            if len(out) == limit:
                break
    return out
