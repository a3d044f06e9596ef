"""Retention in memory (``RetentionStore``): ``retire_run.lua`` in Python, under the lock.
The batch hash is kept (memory hashes have no expiry)."""

from __future__ import annotations

import json

from ..._vocab import FINAL_VALUES
from ..retention_base import RetentionTimer
from .base import MemoryBase


class MemoryRetention(RetentionTimer, MemoryBase):
    def retire_run(self, run_id: str) -> bool:
        k = self.keys
        with self._lock:
            st = self._state
            record = st.hashes.get(k.run(run_id))
            if record is None or record.get("status") not in FINAL_VALUES:
                return False
            for tag in json.loads(record.get("tags") or "[]"):
                st.zrem(k.tag(tag), run_id)
            for stream in json.loads(record.get("streams") or "[]"):
                st.streams.pop(k.run_stream(run_id, stream), None)
            st.zrem(k.by_created(), run_id)
            st.hashes.pop(k.run(run_id), None)
            st.lists.pop(k.children(run_id), None)
            st.lists.pop(k.journal(run_id), None)
            st.sets.pop(k.waiters(run_id), None)
            st.sets.pop(k.awaiting(run_id), None)
            st.streams.pop(k.run_logs(run_id), None)  # the run's own log goes with it
            st.hashes.pop(k.run_logs_meta(run_id), None)
            return True
