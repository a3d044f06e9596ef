"""The timer set on Redis (``TimerStore``): ``claim_timers.lua`` hands due members out
under a claim lease; ``ack_timers`` ends a claim.
"""

from __future__ import annotations

from collections.abc import Sequence

from .client import RedisBase


class RedisTimers(RedisBase):
    """The timer set on Redis (``TimerStore``): ``claim_timers.lua`` hands due members out"""

    #: Lua scripts publish on ``Feed.timers()`` when a timer due soon becomes the earliest.
    wakes_timers = True

    def add_timers(self, timers: Sequence[tuple[str, int]]) -> None:
        if timers:
            args: list[str | int] = []
            for member, due in timers:
                args += [member, due]
            self._scripts["timers_add"](keys=[self.keys.timers()], args=args)

    def claim_timers(self, now_ms: int, limit: int, lease_ms: int) -> list[str]:
        return list(
            self._scripts["claim_timers"](
                keys=[self.keys.timers(), self.keys.timers_claimed()],
                args=[now_ms, limit, lease_ms],
            )
        )

    def ack_timers(self, members: Sequence[str]) -> None:
        if members:
            self._client.zrem(self.keys.timers_claimed(), *members)

    def timer_due(self, member: str) -> int | None:
        score = self._client.zscore(self.keys.timers(), member)
        return None if score is None else int(score)

    def next_timer_due(self) -> int | None:
        pipe = self._client.pipeline(transaction=False)
        pipe.zrange(self.keys.timers(), 0, 0, withscores=True)
        pipe.zrange(self.keys.timers_claimed(), 0, 0, withscores=True)
        dues = [int(rows[0][1]) for rows in pipe.execute() if rows]
        return min(dues, default=None)

    def remove_timers(self, members: Sequence[str]) -> None:
        if members:
            self._client.zrem(self.keys.timers(), *members)

    def timer_stats(self, now_ms: int) -> tuple[int, int | None]:
        pipe = self._client.pipeline(transaction=False)
        pipe.zcount(self.keys.timers(), "-inf", now_ms)
        pipe.zrange(self.keys.timers(), 0, 0, withscores=True)
        due, first = pipe.execute()
        return int(due), (int(first[0][1]) if due and first else None)
