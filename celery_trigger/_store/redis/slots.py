"""Queues and their concurrency slots (DESIGN §6), the ``SlotStore`` part of ``RedisStore``.

The logic is in Lua: ``lua/slots.lua`` holds the functions that ``claim_attempt.lua``,
``slot_join.lua``, ``slot_release.lua`` and ``slot_reap.lua`` include, so taking a slot is
part of the claim script and giving one back (with the hand-over to the next waiting run)
is one script; ``slot_join`` runs in the pipeline that creates a run.
This module only passes keys (all built by ``_keys.Keys``) and arguments; ``wrap_errors``
(``client.py``) turns Redis errors into ``StoreUnavailableError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..types import Record, SlotScope
from .client import RedisBase, ScriptArg


def _limit_arg(scope: SlotScope) -> ScriptArg:
    return "" if scope.env_limit is None else scope.env_limit


class RedisSlots(RedisBase):
    """Slot operations (``slots.lua`` and the scripts that include it)."""

    def _slot_keys(self, scope: SlotScope) -> tuple[list[str], str]:
        """The eight slot keys of ``slots.lua`` for the scope's sub-queue, and its id."""
        if not scope.queue:
            return [""] * 8, ""
        k = self.keys
        sub = k.subqueue(scope.queue, scope.ckey)
        return [
            k.queue(scope.queue),
            k.slot_waiting(sub),
            k.queue_subs(scope.queue),
            k.slots(),
            k.slots_sub(),
            k.slots_count(),
            k.slots_ready(),
            k.slots_unclaimed(),
        ], sub

    def _claim_reply(
        self,
        run_id: str,
        token: str,
        now_ms: int,
        lease_ms: int,
        mode: str,
        drop_timers: Sequence[str],
        scope: SlotScope | None,
    ) -> Any:
        """Run ``claim_attempt.lua``; a run recorded in another (sub-)queue than the hint is
        claimed again with its own queue's keys (the script wrote nothing)."""
        scope = scope or SlotScope()
        reply: Any = None
        for _ in range(3):
            slot_keys, sub = self._slot_keys(scope)
            reply = self._evalrun(
                "claim_attempt",
                run_id,
                [
                    self.keys.run(run_id),
                    self.keys.timers(),
                    self.keys.journal(run_id),
                    *slot_keys,
                ],
                [
                    now_ms,
                    token,
                    lease_ms,
                    mode,
                    scope.queue,
                    scope.ckey,
                    sub,
                    _limit_arg(scope),
                    *drop_timers,
                ],
            )
            if reply[0] != "slot":
                break
            scope = SlotScope(reply[1], reply[2], scope.env_limit)
        return reply

    def _join(self, run_id: str, scope: SlotScope, pipe: Any) -> None:
        slot_keys, sub = self._slot_keys(scope)
        if sub:
            self._scripts["slot_join"](
                keys=[self.keys.run(run_id), self.keys.timers(), *slot_keys],
                args=[sub, _limit_arg(scope)],
                client=pipe,
            )

    def release_slot(
        self, run_id: str | None, scope: SlotScope, now_ms: int, handoff_ms: int, delay_ms: int
    ) -> list[str]:
        slot_keys, sub = self._slot_keys(scope)
        if not sub:
            return []
        return [
            str(r)
            for r in self._scripts["slot_release"](
                keys=[self.keys.run(run_id) if run_id else "", self.keys.timers(), *slot_keys],
                args=[now_ms, run_id or "", sub, _limit_arg(scope), handoff_ms, delay_ms],
            )
        ]

    def reap_slots(self, now_ms: int) -> int:
        k = self.keys
        return int(
            self._scripts["slot_reap"](
                keys=[k.slots(), k.slots_sub(), k.slots_count(), k.timers()], args=[now_ms]
            )
        )

    def queue_usage(self, name: str, now_ms: int) -> tuple[int, int]:
        k = self.keys
        pipe = self._client.pipeline(transaction=False)
        pipe.hgetall(k.slots_sub())
        pipe.zrangebyscore(k.slots(), f"({now_ms}", "+inf")
        pipe.zrange(k.slots_ready(), 0, -1)
        pipe.smembers(k.queue_subs(name))
        subof, live, ready, subs = pipe.execute()
        mine = {run for run, sub in subof.items() if k.split_subqueue(sub)[0] == name}
        pipe = self._client.pipeline(transaction=False)
        for sub in subs:
            pipe.zcard(k.slot_waiting(sub))
        waiting = sum(int(n) for n in pipe.execute())
        return len(mine & set(live)), len(mine & set(ready)) + waiting

    def queue_subqueues(self, name: str) -> list[str]:
        return sorted(self._client.smembers(self.keys.queue_subs(name)))

    def subqueue_waiting(self, name: str) -> dict[str, int]:
        subs = sorted(self._client.smembers(self.keys.queue_subs(name)))
        pipe = self._client.pipeline(transaction=False)
        for sub in subs:
            pipe.zcard(self.keys.slot_waiting(sub))
        return {sub: int(n) for sub, n in zip(subs, pipe.execute(), strict=True) if int(n)}

    def queue_names(self) -> list[str]:
        return sorted(self._client.smembers(self.keys.queues()))

    def put_queue(self, name: str, fields: dict[str, str]) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.sadd(self.keys.queues(), name)
        pipe.hset(self.keys.queue(name), mapping=fields)
        pipe.execute()

    def get_queue(self, name: str) -> Record | None:
        return self._client.hgetall(self.keys.queue(name)) or None
