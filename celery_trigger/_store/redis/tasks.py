"""Task definitions and runs pending a version on Redis (``TaskStore``)."""

from __future__ import annotations

from .client import RedisBase


class RedisTasks(RedisBase):
    """Task definitions and runs pending a version on Redis (``TaskStore``)."""

    def put_task_defs(self, defs: dict[str, str]) -> None:
        if defs:
            self._client.hset(self.keys.task_defs(), mapping=defs)

    def get_task_def(self, task_id: str) -> str | None:
        value = self._client.hget(self.keys.task_defs(), task_id)
        return None if value is None else str(value)

    def pending_runs(self, task_id: str, limit: int) -> list[str]:
        if limit <= 0:  # ZRANGE 0 -1 would mean "everything"
            return []
        return list(self._client.zrange(self.keys.pending_version(task_id), 0, limit - 1))
