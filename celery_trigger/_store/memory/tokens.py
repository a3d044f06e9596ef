"""Waitpoint tokens in memory (``TokenStore``): ``token_create.lua``, ``token_complete.lua``."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..._vocab import (
    TOKEN_MEMBER_PREFIX,
    TimerKind,
    WaitpointStatus,
)
from ..types import (
    Created,
    Record,
)
from .base import MemoryBase
from .state import mono_ms


class MemoryTokens(MemoryBase):
    """Waitpoint tokens in memory (``TokenStore``): ``token_create.lua``, ``token_complete.lua``."""

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
        """``token_create.lua``: a new token, or the live owner of ``key`` (cached)."""
        with self._lock:
            st, keys = self._state, self.keys
            if key:
                owner = st.get(keys.token_idempotency(key))
                if owner is not None:
                    return Created(owner, True)
                expiry = mono_ms() + key_ttl_ms if key_ttl_ms > 0 else math.inf  # D-7
                st.strings[keys.token_idempotency(key)] = (token_id, expiry)
            st.hset(keys.token(token_id), dict(fields))
            st.zadd(keys.tokens_by_created(), token_id, now_ms)
            for tag in tags:
                st.zadd(keys.token_tag(tag), token_id, now_ms)
            if timeout_ms is not None:
                st.zadd(keys.timers(), TimerKind.TOKEN_TIMEOUT.member(token_id), timeout_ms)
            return Created(token_id, False)

    def get_token(self, token_id: str) -> Record | None:
        with self._lock:
            return self._hash_copy(self.keys.token(token_id))

    def complete_token(
        self, token_id: str, now_ms: int, status: str, field: str, value: str
    ) -> tuple[str, list[str]]:
        """``token_complete.lua``: first wins; ``ok`` comes with the parked waiters."""
        with self._lock:
            st, timers = self._state, self.keys.timers()
            token = st.hashes.get(self.keys.token(token_id))
            current = None if token is None else token.get("status")
            if token is None or current is None:
                return "missing", []
            if current != WaitpointStatus.WAITING.value:
                return "done", []
            owner_id = token.get("id")
            token.update({"status": status, "completed_at": str(now_ms)})
            token[field] = value
            st.zrem(timers, TimerKind.TOKEN_TIMEOUT.member(owner_id or ""))
            waiters = sorted(st.sets.get(self.keys.waiters(f"token:{token_id}"), ()))
            if waiters:
                st.zadd(
                    timers,
                    TimerKind.NOTIFY.member(f"{TOKEN_MEMBER_PREFIX}{owner_id}"),
                    now_ms + 5000,
                )
            return "ok", waiters

    def list_token_ids(
        self, *, tag: str | None, before: tuple[int, str] | None, count: int
    ) -> list[tuple[str, int]]:
        with self._lock:
            key = self.keys.token_tag(tag) if tag else self.keys.tokens_by_created()
            return self._page(key, before, count)
