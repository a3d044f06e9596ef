"""Idempotency keys (``ct.idempotency_keys.*``, SEMANTICS §5): derive and reset them.

Example::

    @ct.task(id="checkout")
    def checkout(payload, ctx):
        # the same key on every attempt of this run: a retry gets the first attempt's run
        key = ct.idempotency_keys.create(f"receipt-{payload['order']}")
        send_receipt.trigger(payload, idempotency_key=key)

    ct.idempotency_keys.reset("send-receipt", "k", scope="global")   # allow a new run

A key is the SHA-256 (64 hex characters) of its parts joined with ``-``; ``scope="run"``
(the default) adds the calling run's id, ``"attempt"`` the run id and attempt number,
``"global"`` nothing. Outside a run every scope is global. Keys live in Redis with their
TTL (``idempotency_key_ttl``, 30 days by default), per task.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._engine import idempotency as _idem
from ._engine.engine import current
from ._engine.idempotency import IdempotencyKey
from ._engine.state import current_state


def create(key_or_parts: str | Sequence[str], *, scope: str = "run") -> IdempotencyKey:
    """Derive a key. Example: ``ct.idempotency_keys.create(["user", "42"], scope="global")``.

    The result is a ``str`` (the hex digest) that also carries ``user_key`` (the parts
    joined with ``-``) and ``scope``; triggers use it verbatim.
    """
    if isinstance(key_or_parts, str) and not key_or_parts:
        raise ValueError("an idempotency key must not be empty")
    state = current_state()
    return _idem.create(
        key_or_parts,
        scope=scope,
        run_id=state.run_id if state else None,
        attempt=state.attempt if state else None,
    )


def _digest(
    key: str | Sequence[str],
    scope: str | None,
    parent_run_id: str | None,
    attempt_number: int | None,
) -> str:
    """The stored key a reset addresses (SEMANTICS §5.4)."""
    if isinstance(key, IdempotencyKey) or (
        isinstance(key, str) and len(key) == 64 and scope is None
    ):
        return str(key)
    scope = scope or "run"
    if scope not in _idem.SCOPES:
        raise ValueError(f"scope must be one of {', '.join(_idem.SCOPES)}, got {scope!r}")
    if scope == "global":
        return str(_idem.create(key, scope="global"))
    state = current_state()
    run_id = parent_run_id or (state.run_id if state else None)
    attempt = (
        attempt_number
        if attempt_number is not None
        else (state.attempt if state and not parent_run_id else None)
    )
    if run_id is None:
        raise ValueError(
            f"idempotency_keys.reset: parent_run_id is required to rebuild a "
            f"{scope}-scoped key outside a run"
        )
    if scope == "attempt" and attempt is None:
        raise ValueError(
            "idempotency_keys.reset: attempt_number is required to rebuild an "
            "attempt-scoped key outside a run"
        )
    if attempt is not None and (
        isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1
    ):
        raise ValueError(f"attempt_number must be a positive integer, got {attempt!r}")
    return str(_idem.create(key, scope=scope, run_id=run_id, attempt=attempt))


def reset(
    task_identifier: str,
    key: str | Sequence[str],
    *,
    scope: str | None = None,
    parent_run_id: str | None = None,
    attempt_number: int | None = None,
) -> dict[str, str]:
    """Release a key so the next trigger of ``task_identifier`` with it creates a new run.

    Returns ``{"id": <key hash>}``; raises ``RunNotFoundError`` when no run holds the key.
    A key from ``create``, or a 64-character string without ``scope``, is used as is;
    otherwise the hash is rebuilt for ``scope`` (default ``"run"``: needs
    ``parent_run_id`` outside a run). Example:
    ``ct.idempotency_keys.reset("send-email", "welcome-42", scope="global")``.
    """
    if not isinstance(task_identifier, str) or not task_identifier:
        raise ValueError("task_identifier must be a non-empty string")
    digest = _digest(key, scope, parent_run_id, attempt_number)
    _idem.reset(current(), task_identifier, digest)
    return {"id": digest}


__all__ = ["IdempotencyKey", "create", "reset"]
