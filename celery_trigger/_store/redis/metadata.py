"""Run metadata and tags on Redis (``MetadataStore``): ``metadata_apply.lua``,
``tags_add.lua``; a tag added here updates the run's cached identity (``events.py``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import redis

from ..types import (
    MetaResult,
    MetaUpdate,
)
from .client import RedisBase, ScriptArg
from .events import RunIdentity, event_block, stale_identity


class RedisMetadata(RedisBase):
    """Run metadata and tags on Redis (``MetadataStore``): ``metadata_apply.lua``,"""

    def apply_metadata(
        self, updates: Sequence[MetaUpdate], now_ms: int, *, max_bytes: int
    ) -> list[MetaResult]:
        script = self._scripts["metadata_apply"]

        def call(u: MetaUpdate) -> tuple[list[str], list[ScriptArg]]:
            window = "" if u.window_ms is None else u.window_ms
            return [self.keys.run(u.run_id)], [
                now_ms,
                max_bytes,
                window,
                u.operations,
                "1" if u.reply else "0",
            ]

        pipe = self._client.pipeline(transaction=False)
        for u in updates:
            keys, args = call(u)
            ev_keys, spec = event_block(self.keys, u.run_id, self._identities.get(u.run_id))
            script(keys=[*keys, *ev_keys], args=[*args, spec], client=pipe)
        replies = pipe.execute(raise_on_error=False)
        out: list[MetaResult] = []
        for u, reply in zip(updates, replies, strict=True):
            if isinstance(reply, redis.ResponseError) and stale_identity(str(reply)):
                reply = self._evalrun("metadata_apply", u.run_id, *call(u))  # stale event keys
            elif isinstance(reply, Exception):
                raise reply
            out.append(MetaResult(str(reply[0]), str(reply[1] or "")))
        return out

    def add_tags(self, run_id: str, tags: Sequence[str], max_tags: int) -> tuple[str, list[str]]:
        status, text = self._evalrun(
            "tags_add",
            run_id,
            [self.keys.run(run_id), *(self.keys.tag(t) for t in tags)],
            [max_tags, *tags],
            extra_tags=tags,
        )
        current = list(json.loads(text or "[]"))
        if status == "ok":
            batch = self._identities.get(run_id).batch
            self._identities.put(run_id, RunIdentity(tuple(current), batch))
        return str(status), current
