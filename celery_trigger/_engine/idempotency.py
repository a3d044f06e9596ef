"""Idempotency key derivation (SEMANTICS §5.1).

A key is a 64-character lowercase hex SHA-256 of its parts joined with ``-``; run scope adds
the calling run's id, attempt scope the run id and attempt number, global scope nothing.
Outside a run every scope behaves as global. A raw 64-character string is used verbatim.

A reset releases a key so the next trigger with it creates a new run: only the key's current
owner is released (compare-and-delete), so a reset racing a trigger that took the key over
releases the new owner in turn, never a key it did not read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ..errors import RunNotFoundError
from .engine import Engine

DEFAULT_TTL_S = 30 * 86400
MAX_KEY_LENGTH = 2048
SCOPES = ("run", "attempt", "global")


class IdempotencyKey(str):
    """A derived key (64 hex chars) that remembers the user's parts and scope."""

    user_key: str
    scope: str

    def __new__(cls, digest: str, user_key: str, scope: str) -> IdempotencyKey:
        obj = super().__new__(cls, digest)
        obj.user_key = user_key
        obj.scope = scope
        return obj


def _parts(value: str | Sequence[str]) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and value and all(isinstance(p, str) for p in value):
        return list(value)
    raise TypeError("an idempotency key must be a string or a non-empty list of strings")


def create(
    value: str | Sequence[str],
    *,
    scope: str = "run",
    run_id: str | None = None,
    attempt: int | None = None,
) -> IdempotencyKey:
    """Derive a key. Example: ``create("k", scope="global") == sha256("k")``."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    parts = _parts(value)
    user_key = "-".join(parts)
    if len(user_key) > MAX_KEY_LENGTH:
        raise ValueError(f"idempotency key is longer than {MAX_KEY_LENGTH} characters")
    if run_id is not None and scope in ("run", "attempt"):
        parts = [*parts, run_id]
        if scope == "attempt":
            parts.append(str(attempt or 1))
    digest = hashlib.sha256("-".join(parts).encode()).hexdigest()
    return IdempotencyKey(digest, user_key, scope)


def for_trigger(value: object, *, run_id: str | None, attempt: int | None) -> IdempotencyKey:
    """The key a trigger option stands for: derived keys and 64-char strings are verbatim,
    other strings and lists are run-scoped (SDK ≥ 4.3.1)."""
    if isinstance(value, IdempotencyKey):
        return value
    if isinstance(value, str) and len(value) == 64:
        return IdempotencyKey(value, value, "global")
    if isinstance(value, str) and not value:
        raise ValueError("idempotency_key must not be empty")
    return create(value, scope="run", run_id=run_id, attempt=attempt)  # type: ignore[arg-type]


def reset(engine: Engine, task_id: str, digest: str) -> None:
    """Release key ``digest`` of ``task_id``; ``RunNotFoundError`` when no run holds it."""
    while True:
        owner = engine.store.idempotency_owner(task_id, digest)
        if owner is None:
            raise RunNotFoundError(f"no run of {task_id!r} holds idempotency key {digest!r}")
        if engine.store.release_idempotency_key(task_id, digest, owner, clear_record=True):
            return
        # another trigger took the key over between the two calls: release the new owner
