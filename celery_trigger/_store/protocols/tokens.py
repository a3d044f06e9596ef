"""Waitpoint tokens (SEMANTICS §7): create, read, complete, list.

Invariants: the first completion (or the timeout) of a token wins; an idempotency key names
at most one live token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..types import Created, Record


class TokenStore(Protocol):
    """Waitpoint tokens (SEMANTICS §7): create, read, complete, list."""

    def create_token(
        self,
        token_id: str,
        now_ms: int,
        *,
        key: str | None,
        key_ttl_ms: int,
        timeout_ms: int | None,
        fields: dict[str, str],
        tags: Sequence[str],
    ) -> Created:
        """Create a waitpoint token, or return the live owner of its idempotency key."""
        ...

    def get_token(self, token_id: str) -> Record | None:
        """The token record, or None."""
        ...

    def complete_token(
        self, token_id: str, now_ms: int, status: str, field: str, value: str
    ) -> tuple[str, list[str]]:
        """First completion wins: (``ok``, waiters) | (``done``, []) | (``missing``, [])."""
        ...

    def list_token_ids(
        self, *, tag: str | None, before: tuple[int, str] | None, count: int
    ) -> list[tuple[str, int]]:
        """Newest-first ``(token id, created ms)`` page strictly after the cursor."""
        ...
