"""The run's own log in memory (``LogStore``): mirrors ``lua/log_append.lua``."""

from __future__ import annotations

from collections.abc import Sequence

from .events import MemoryEvents


class MemoryLogs(MemoryEvents):
    """The run's own log in memory (``LogStore``); it does not expire (embedded mode)."""

    def append_logs(
        self, run_id: str, entries: Sequence[str], *, max_count: int, max_bytes: int, ttl_ms: int
    ) -> int:
        if not entries:
            return 0
        key, meta_key = self.keys.run_logs(run_id), self.keys.run_logs_meta(run_id)
        with self._lock:
            meta = self._state.hashes.setdefault(meta_key, {})
            size = int(meta.get("bytes") or 0)
            for entry in entries:
                self._xadd(key, {"d": entry})
                size += len(entry.encode())
            kept = self._streams()[key]
            dropped = 0
            while kept and (len(kept) > max_count or size > max_bytes):
                size -= len(kept.pop(0)[1]["d"].encode())
                dropped += 1
            meta["bytes"] = str(size)
            if dropped:
                meta["dropped"] = str(int(meta.get("dropped") or 0) + dropped)
            return dropped

    def read_logs(self, run_id: str, limit: int) -> tuple[int, list[tuple[str, str]]]:
        with self._lock:
            meta = self._state.hashes.get(self.keys.run_logs_meta(run_id)) or {}
            kept = self._streams().get(self.keys.run_logs(run_id)) or []
            rows = kept[-limit:] if limit > 0 else []
            return int(meta.get("dropped") or 0), [(i, f["d"]) for i, f in rows]
