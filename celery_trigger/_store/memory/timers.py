"""The timer set in memory (``TimerStore``): ``claim_timers.lua`` in Python."""

from __future__ import annotations

from collections.abc import Sequence

from .base import MemoryBase


class MemoryTimers(MemoryBase):
    """The timer set in memory (``TimerStore``): ``claim_timers.lua`` in Python."""

    #: Nothing publishes ``Feed.timers()``: timer services keep polling.
    wakes_timers = False

    def add_timers(self, timers: Sequence[tuple[str, int]]) -> None:
        with self._lock:
            for member, due in timers:
                self._state.zadd(self.keys.timers(), member, due)

    def claim_timers(self, now_ms: int, limit: int, lease_ms: int) -> list[str]:
        """``claim_timers.lua``: lapsed claims go back first, then due members are claimed."""
        with self._lock:
            st, timers, claimed = self._state, self.keys.timers(), self.keys.timers_claimed()
            for member in st.zrange_upto(claimed, now_ms, limit):
                st.zrem(claimed, member)
                st.zadd(timers, member, now_ms)
            due = st.zrange_upto(timers, now_ms, limit)
            for member in due:
                st.zrem(timers, member)
                st.zadd(claimed, member, now_ms + lease_ms)
            return due

    def ack_timers(self, members: Sequence[str]) -> None:
        with self._lock:
            for member in members:
                self._state.zrem(self.keys.timers_claimed(), member)

    def timer_due(self, member: str) -> int | None:
        with self._lock:
            score = self._state.zsets.get(self.keys.timers(), {}).get(member)
            return None if score is None else int(score)

    def next_timer_due(self) -> int | None:
        with self._lock:
            zsets = self._state.zsets
            dues = [
                min(zset.values())
                for zset in (zsets.get(self.keys.timers()), zsets.get(self.keys.timers_claimed()))
                if zset
            ]
            return int(min(dues)) if dues else None

    def remove_timers(self, members: Sequence[str]) -> None:
        with self._lock:
            for member in members:
                self._state.zrem(self.keys.timers(), member)

    def timer_stats(self, now_ms: int) -> tuple[int, int | None]:
        with self._lock:
            due = [d for d in self._state.zsets.get(self.keys.timers(), {}).values() if d <= now_ms]
            return len(due), (int(min(due)) if due else None)
