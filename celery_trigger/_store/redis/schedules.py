"""Schedules on Redis (``ScheduleStore``): ``schedule_put.lua``, ``schedule_advance.lua``,
``schedule_delete.lua``.
"""

from __future__ import annotations

from ..types import (
    Record,
    schedule_timer,
)
from .client import RedisBase, ScriptArg, flatten, pairs


class RedisSchedules(RedisBase):
    """Schedules on Redis (``ScheduleStore``): ``schedule_put.lua``, ``schedule_advance.lua``,"""

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
        k = self.keys
        args: list[ScriptArg] = [
            schedule_id,
            now_ms,
            mode,
            require_type,
            schedule_timer(schedule_id),
            "" if next_run is None else next_run[0],
            "" if next_run is None else next_run[1],
            len(create_fields),
            *flatten(create_fields),
            *flatten(fields),
        ]
        reply = self._scripts["schedule_put"](
            keys=[k.schedule(schedule_id), k.schedules(), k.timers(), k.timers_claimed()], args=args
        )
        if reply[0] == "type":
            return "type", {"type": reply[1]}
        return reply[0], (pairs(reply, 1) if len(reply) > 1 else None)

    def get_schedule(self, schedule_id: str) -> Record | None:
        return self._client.hgetall(self.keys.schedule(schedule_id)) or None

    def list_schedules(self, offset: int, count: int) -> tuple[list[Record], int]:
        if count <= 0:
            return [], int(self._client.zcard(self.keys.schedules()))
        ids = self._client.zrange(self.keys.schedules(), offset, offset + count - 1)
        pipe = self._client.pipeline(transaction=False)
        for schedule_id in ids:
            pipe.hgetall(self.keys.schedule(schedule_id))
        pipe.zcard(self.keys.schedules())
        *records, total = pipe.execute()
        return [r for r in records if r], int(total)

    def delete_schedule(self, schedule_id: str, *, require_type: str) -> str:
        k = self.keys
        return str(
            self._scripts["schedule_delete"](
                keys=[k.schedule(schedule_id), k.schedules(), k.timers()],
                args=[schedule_id, require_type, schedule_timer(schedule_id)],
            )
        )

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
        return bool(
            self._scripts["schedule_advance"](
                keys=[self.keys.schedule(schedule_id), self.keys.timers()],
                args=[
                    expected_ms,
                    next_ms,
                    due_ms,
                    schedule_timer(schedule_id),
                    "" if last_ms is None else last_ms,
                    now_ms,
                ],
            )
        )
