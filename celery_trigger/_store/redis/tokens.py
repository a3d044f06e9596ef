"""Waitpoint tokens on Redis (``TokenStore``): ``token_create.lua``, ``token_complete.lua``."""

from __future__ import annotations

from collections.abc import Sequence

from ..types import (
    Created,
    Record,
)
from .client import RedisBase, ScriptArg, flatten


class RedisTokens(RedisBase):
    """Waitpoint tokens on Redis (``TokenStore``): ``token_create.lua``, ``token_complete.lua``."""

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
        k_ = self.keys
        keys = [
            k_.token(token_id),
            k_.token_idempotency(key) if key else "",
            k_.timers(),
            k_.tokens_by_created(),
            *(k_.token_tag(t) for t in tags),
        ]
        args: list[ScriptArg] = [
            token_id,
            now_ms,
            key_ttl_ms,
            "" if timeout_ms is None else timeout_ms,
            *flatten(fields),
        ]
        token, cached = self._scripts["token_create"](keys=keys, args=args)
        return Created(token, bool(int(cached)))

    def get_token(self, token_id: str) -> Record | None:
        return self._client.hgetall(self.keys.token(token_id)) or None

    def complete_token(
        self, token_id: str, now_ms: int, status: str, field: str, value: str
    ) -> tuple[str, list[str]]:
        reply = self._scripts["token_complete"](
            keys=[
                self.keys.token(token_id),
                self.keys.timers(),
                self.keys.waiters(f"token:{token_id}"),
            ],
            args=[now_ms, status, field, value],
        )
        return reply[0], list(reply[1:])

    def list_token_ids(
        self, *, tag: str | None, before: tuple[int, str] | None, count: int
    ) -> list[tuple[str, int]]:
        key = self.keys.token_tag(tag) if tag else self.keys.tokens_by_created()
        return self._page(key, before, count)
