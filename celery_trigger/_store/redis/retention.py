"""Retention on Redis (``RetentionStore``): ``retire_run.lua``."""

from __future__ import annotations

import json

from ..retention_base import RetentionTimer
from .client import RedisBase


class RedisRetention(RetentionTimer, RedisBase):
    def retire_run(self, run_id: str) -> bool:
        k = self.keys
        for _ in range(3):  # the tags or streams changed between the read and the script
            tags, streams = self._client.hmget(k.run(run_id), ["tags", "streams"])
            extra = [k.tag(t) for t in json.loads(tags or "[]")]
            extra += [k.run_stream(run_id, s) for s in json.loads(streams or "[]")]
            extra += [k.run_logs(run_id), k.run_logs_meta(run_id)]  # the run's own log
            batch = self._client.hget(k.run(run_id), "batch")
            keys = [
                k.run(run_id), k.children(run_id), k.journal(run_id), k.waiters(run_id),
                k.awaiting(run_id), k.by_created(), k.batch(batch) if batch else "", *extra,
            ]  # fmt: skip
            args = [run_id, self.retention_ms or 0, tags or "", streams or ""]
            reply = int(self._scripts["retire_run"](keys=keys, args=args))
            if reply >= 0:
                return reply == 1
        return False
