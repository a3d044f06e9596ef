"""MemoryStore's schedule operations: ``schedule_put.lua``, ``schedule_advance.lua`` and
``schedule_delete.lua`` in Python, over the same keyspace and under the store's lock.

A mixin of ``MemoryStore``; it uses only the attributes
``MemoryStore`` defines (``keys``, ``_state``, ``_lock``). Invariants are those of the
scripts: one ``sched|<id>`` timer per schedule, next_run moved only when the schedule is new
or its cron or timezone changed or its timer was lost, advance is a compare-and-set on next_run.
"""

from __future__ import annotations

import threading

from ..._keys import Keys
from ..types import Record, schedule_timer
from .base import MemoryBase
from .state import MemoryState


class MemorySchedules(MemoryBase):
    """The schedule part of the Store protocol for ``MemoryStore``."""

    keys: Keys
    _state: MemoryState
    _lock: threading.RLock

    def put_schedule(
        self,
        schedule_id: str,
        now_ms: int,
        *,
        mode: str,
        require_type: str,
        create_fields: dict[str, str],
        fields: dict[str, str],
        next_run: tuple[int, int] | None,
    ) -> tuple[str, Record | None]:
        """``schedule_put.lua``."""
        with self._lock:
            key, st = self.keys.schedule(schedule_id), self._state
            record = st.hashes.get(key)
            if record is None and mode != "upsert":
                return "missing", None
            if record is not None and require_type and record.get("type") != require_type:
                return "type", {"type": record.get("type", "")}
            created = record is None
            if record is None:
                record = st.hashes.setdefault(key, {})
                record.update(create_fields)
                record["created"] = str(now_ms)
                st.zadd(self.keys.schedules(), schedule_id, now_ms)
            member = schedule_timer(schedule_id)
            armed = member in st.zsets.get(self.keys.timers(), {}) or member in st.zsets.get(
                self.keys.timers_claimed(), {}
            )
            reschedule = created or "next_run" not in record or not armed
            for name, value in fields.items():
                if name in ("cron", "timezone") and record.get(name) != value:
                    reschedule = True
                if value == "":
                    record.pop(name, None)
                else:
                    record[name] = value
            record["updated"] = str(now_ms)
            if reschedule and next_run is not None:
                record["next_run"] = str(next_run[0])
                st.zadd(self.keys.timers(), member, next_run[1])
            return ("created" if created else "updated"), dict(record)

    def get_schedule(self, schedule_id: str) -> Record | None:
        with self._lock:
            record = self._state.hashes.get(self.keys.schedule(schedule_id))
            return None if record is None else dict(record)

    def list_schedules(self, offset: int, count: int) -> tuple[list[Record], int]:
        with self._lock:
            rows = self._state.zsorted(self.keys.schedules())
            page = rows[offset : offset + count] if count > 0 else []
            records = [self._state.hashes.get(self.keys.schedule(sid)) for sid, _ in page]
            return [dict(r) for r in records if r], len(rows)

    def delete_schedule(self, schedule_id: str, *, require_type: str) -> str:
        """``schedule_delete.lua``."""
        with self._lock:
            key, st = self.keys.schedule(schedule_id), self._state
            record = st.hashes.get(key)
            if record is None:
                return "missing"
            if require_type and record.get("type") != require_type:
                return "type"
            del st.hashes[key]
            st.zrem(self.keys.schedules(), schedule_id)
            st.zrem(self.keys.timers(), schedule_timer(schedule_id))
            return "ok"

    def advance_schedule(
        self,
        schedule_id: str,
        *,
        expected_ms: int,
        next_ms: int,
        due_ms: int,
        last_ms: int | None,
        now_ms: int,
    ) -> bool:
        """``schedule_advance.lua``."""
        with self._lock:
            record = self._state.hashes.get(self.keys.schedule(schedule_id))
            if record is None or record.get("next_run") != str(expected_ms):
                return False
            record["next_run"] = str(next_ms)
            record["updated"] = str(now_ms)
            if last_ms is not None:
                record["last_run"] = str(last_ms)
            self._state.zadd(self.keys.timers(), schedule_timer(schedule_id), due_ms)
            return True
