"""Durable execution on Redis (``DurableStore``): the journal, ``park.lua``,
``notify.lua``, ``wake.lua`` and wait idempotency keys.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..types import (
    Record,
)
from .client import RedisBase, ScriptArg, flatten, pairs


class RedisDurable(RedisBase):
    """Durable execution on Redis (``DurableStore``): the journal, ``park.lua``,"""

    def journal(self, run_id: str) -> list[str]:
        return list(self._client.lrange(self.keys.journal(run_id), 0, -1))

    def journal_append(self, run_id: str, token: str, k: int, entry: str) -> int:
        return int(
            self._scripts["journal_append"](
                keys=[self.keys.run(run_id), self.keys.journal(run_id)], args=[token, k, entry]
            )
        )

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
        k_ = self.keys
        keys = [k_.run(run_id), k_.journal(run_id), k_.timers(), k_.awaiting(run_id)]
        for member in members:
            keys.append(k_.status_holder(member))
            keys.append(k_.waiters(member))
        args: list[ScriptArg] = [
            now_ms,
            token,
            k,
            entry,
            "" if due_ms is None else due_ms,
            f"{run_id}|{k}",
            len(fields),
            *flatten(fields),
            *members,
        ]
        return str(self._evalrun("park", run_id, keys, args))

    def waiters(self, member: str) -> list[str]:
        return list(self._client.smembers(self.keys.waiters(member)))

    def notify(self, waiter: str, member: str, now_ms: int, safety_ms: int) -> bool:
        run_id, _, k = waiter.rpartition("|")
        return bool(
            self._scripts["notify"](
                keys=[self.keys.run(run_id), self.keys.awaiting(run_id), self.keys.timers()],
                args=[now_ms, k, member, safety_ms],
            )
        )

    def wake(self, run_id: str) -> Record | None:
        reply = self._scripts["wake"](keys=[self.keys.run(run_id)], args=[])
        if not reply:
            return None
        record = pairs(reply)
        self._identities.remember(run_id, record)
        return record

    def wait_key(self, key: str, due_ms: int, ttl_ms: int | None) -> int:
        name = self.keys.wait_idempotency(key)
        pipe = self._client.pipeline(transaction=True)
        if ttl_ms:
            pipe.set(name, due_ms, nx=True, px=ttl_ms)
        else:
            pipe.set(name, due_ms, nx=True)
        pipe.get(name)
        return int(pipe.execute()[1])
