"""The run's own log on Redis (``LogStore``): a stream per run, ``log_append.lua``."""

from __future__ import annotations

from collections.abc import Sequence

from .client import RedisBase


class RedisLogs(RedisBase):
    """The run's own log on Redis (``LogStore``)."""

    def append_logs(
        self, run_id: str, entries: Sequence[str], *, max_count: int, max_bytes: int, ttl_ms: int
    ) -> int:
        if not entries:
            return 0
        keys = [self.keys.run_logs(run_id), self.keys.run_logs_meta(run_id)]
        args = [max_count, max_bytes, max(1, ttl_ms), *entries]
        return int(self._scripts["log_append"](keys=keys, args=args))

    def read_logs(self, run_id: str, limit: int) -> tuple[int, list[tuple[str, str]]]:
        pipe = self._client.pipeline(transaction=True)
        pipe.hget(self.keys.run_logs_meta(run_id), "dropped")
        pipe.xrevrange(self.keys.run_logs(run_id), "+", "-", count=max(1, limit))
        dropped, rows = pipe.execute()
        entries = [(str(i), str(f["d"])) for i, f in reversed(rows)] if limit > 0 else []
        return int(dropped or 0), entries
