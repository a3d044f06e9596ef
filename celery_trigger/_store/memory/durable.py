"""Durable execution in memory (``DurableStore``): the journal, ``park.lua``,
``notify.lua``, ``wake.lua`` and wait idempotency keys, under the lock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..._vocab import (
    FINAL_VALUES,
    EventKind,
    RunStatus,
    TimerKind,
    WaitpointStatus,
)
from ...errors import StoreUnavailableError
from ..types import (
    Record,
)
from .events import MemoryEvents
from .state import lua_num, mono_ms


class MemoryDurable(MemoryEvents):
    """Durable execution in memory (``DurableStore``): the journal, ``park.lua``,"""

    def journal(self, run_id: str) -> list[str]:
        with self._lock:
            return list(self._state.lists.get(self.keys.journal(run_id), []))

    def journal_append(self, run_id: str, token: str, k: int, entry: str) -> int:
        """``journal_append.lua``: the journal length afterwards, -1 without the lease."""
        with self._lock:
            return self._append(run_id, k, entry) if self._holds(run_id, token) else -1

    def _append(self, run_id: str, k: int, entry: str) -> int:
        journal = self._state.lists.get(self.keys.journal(run_id), [])
        if len(journal) == k:  # the first time the run reaches operation k
            journal.append(entry)
            self._state.lists[self.keys.journal(run_id)] = journal
        return len(journal)

    def park(
        self,
        run_id: str,
        token: str,
        now_ms: int,
        k: int,
        entry: str,
        *,
        due_ms: int | None,
        members: Sequence[str],
        fields: dict[str, str],
    ) -> str:
        """``park.lua``: ``lost``, ``ready`` (nothing to wait for) or ``parked``."""
        with self._lock:
            st, keys = self._state, self.keys
            if not self._holds(run_id, token):
                return "lost"
            self._append(run_id, k, entry)
            awaiting = keys.awaiting(run_id)
            st.sets.pop(awaiting, None)
            pending = 0
            for member in members:
                status = st.hashes.get(keys.status_holder(member), {}).get("status")
                if member.startswith("token:"):
                    resolved = status is not None and status != WaitpointStatus.WAITING.value
                else:
                    resolved = status in FINAL_VALUES
                if not resolved:
                    pending += 1
                    st.sadd(awaiting, member)
                    st.sadd(keys.waiters(member), f"{run_id}|{k}")
            if pending == 0 and (due_ms is None or due_ms <= now_ms):
                return "ready"
            record = st.hashes[keys.run(run_id)]
            record.update(
                status=RunStatus.WAITING.value,
                lease="",
                lease_exp="0",
                woken="0",
                wait_k=lua_num(k),
                updated=lua_num(now_ms),
            )
            self._lease_timer(record, None)
            if fields:
                st.hset(keys.run(run_id), fields)
            if due_ms is not None and due_ms > now_ms:
                st.zadd(keys.timers(), TimerKind.RESUME.member(record.get("id") or ""), due_ms)
            self._emit(run_id, EventKind.STATUS)
            return "parked"

    def waiters(self, member: str) -> list[str]:
        with self._lock:
            return sorted(self._state.sets.get(self.keys.waiters(member), ()))

    def notify(self, waiter: str, member: str, now_ms: int, safety_ms: int) -> bool:
        """``notify.lua``: True when this call woke the run (its last awaited member)."""
        run_id, _, k = waiter.rpartition("|")
        with self._lock:
            st, awaiting = self._state, self.keys.awaiting(run_id)
            record = st.hashes.get(self.keys.run(run_id))
            if (
                record is None
                or record.get("status") != RunStatus.WAITING.value
                or record.get("wait_k") != k
            ):
                return False
            if not st.srem(awaiting, member) or awaiting in st.sets or record.get("woken") == "1":
                return False
            record["woken"] = "1"
            st.zadd(
                self.keys.timers(),
                TimerKind.RESUME.member(record.get("id") or ""),
                now_ms + safety_ms,
            )
            return True

    def wake(self, run_id: str) -> Record | None:
        """``wake.lua``: mark a WAITING run woken and return it; None for any other status."""
        with self._lock:
            record = self._state.hashes.get(self.keys.run(run_id))
            if record is None or record.get("status") != RunStatus.WAITING.value:
                return None
            record["woken"] = "1"
            return dict(record)

    def wait_key(self, key: str, due_ms: int, ttl_ms: int | None) -> int:
        """``SET NX [PX ttl]`` then ``GET``: the due time stored first under ``key`` wins."""
        with self._lock:
            st, name = self._state, self.keys.wait_idempotency(key)
            if ttl_ms is not None and ttl_ms < 0:
                raise StoreUnavailableError("invalid expire time in 'set' command")
            if st.get(name) is None:
                st.strings[name] = (str(due_ms), mono_ms() + ttl_ms if ttl_ms else math.inf)
            return int(st.strings[name][0])
