"""Task definitions and runs pending a version in memory (``TaskStore``); run
idempotency-key deletion.
"""

from __future__ import annotations

from .base import MemoryBase


class MemoryTasks(MemoryBase):
    """Task definitions and runs pending a version in memory (``TaskStore``); run"""

    def put_task_defs(self, defs: dict[str, str]) -> None:
        with self._lock:
            if defs:
                self._state.hset(self.keys.task_defs(), defs)

    def get_task_def(self, task_id: str) -> str | None:
        with self._lock:
            return self._state.hashes.get(self.keys.task_defs(), {}).get(task_id)

    def pending_runs(self, task_id: str, limit: int) -> list[str]:
        with self._lock:
            if limit <= 0:
                return []
            rows = self._state.zsorted(self.keys.pending_version(task_id))
            return [member for member, _ in rows[:limit]]

    def delete_idempotency_key(self, task_id: str, key: str) -> bool:
        with self._lock:
            return self._state.delete(self.keys.idempotency(task_id, key))
