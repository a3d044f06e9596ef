"""MemoryStore's concurrency slots (DESIGN §6): ``lua/slots.lua`` and its scripts in Python.

A mixin of ``MemoryStore``: every method here runs under the store's lock (the public ones
take it; the ``_slot_*`` helpers are called by methods that hold it), over the same keys and
with the same invariants as the Lua (see ``slots.lua``): a run is in at most one of waiting,
ready and held; ``slots:count`` counts a sub-queue's ready and held runs; admission is in
order, lowest first; a lapsed slot lease counts for nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..._keys import Keys
from ..._vocab import REAP_SLOTS_TARGET, RunStatus, TimerKind
from ..types import Claim, Created, NewRun, Record, SlotScope
from .base import MemoryBase
from .state import MemoryState, lua_float

#: How many lapsed slots one reap step drops (``slot_reap`` in slots.lua).
REAP_BATCH = 100


@dataclass(frozen=True)
class _K:
    """The slot keys of one sub-queue (``K`` in slots.lua)."""

    queue: str
    waiting: str
    subs: str
    held: str
    subof: str
    count: str
    ready: str
    unclaimed: str
    timers: str
    sub: str


def _number(value: str | None) -> float | None:
    """Lua's ``tonumber(v)``: None for a missing or unreadable number."""
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None


class MemorySlots(MemoryBase):
    """Slot operations over a ``MemoryStore``'s keyspace."""

    keys: Keys
    _state: MemoryState
    _lock: threading.RLock

    def _slot_k(self, scope: SlotScope) -> _K | None:
        if not scope.queue:
            return None
        k = self.keys
        sub = k.subqueue(scope.queue, scope.ckey)
        return _K(
            k.queue(scope.queue),
            k.slot_waiting(sub),
            k.queue_subs(scope.queue),
            k.slots(),
            k.slots_sub(),
            k.slots_count(),
            k.slots_ready(),
            k.slots_unclaimed(),
            k.timers(),
            sub,
        )

    # slots.lua ----------------------------------------------------------------------------
    def _slot_limit(self, K: _K, env: int | None) -> tuple[float | None, bool]:
        q = self._state.hashes.get(K.queue, {})
        limit = _number(q.get("concurrency_limit"))
        if env is not None and (limit is None or limit > env):
            limit = env
        return limit, q.get("paused") == "1"

    def _count(self, K: _K, sub: str, delta: int) -> int:
        counts = self._state.hashes.setdefault(K.count, {})
        n = int(counts.get(sub, "0")) + delta
        counts[sub] = str(n)
        if n <= 0:
            del counts[sub]
        if not counts:
            del self._state.hashes[K.count]
        return n

    def _hdel(self, key: str, field: str) -> str | None:
        table = self._state.hashes.get(key)
        if table is None or field not in table:
            return None
        value = table.pop(field)
        if not table:
            del self._state.hashes[key]
        return value

    def _slot_reap(self, K: _K, now: int, sub: str) -> int:
        st = self._state
        dead = st.zrange_upto(K.held, now, REAP_BATCH)
        for run in dead:
            s = self._hdel(K.subof, run)
            st.zrem(K.held, run)
            st.zadd(K.timers, TimerKind.PROMOTE.member(run), now)
            if s is not None:
                self._count(K, s, -1)
                if s != sub:
                    st.zadd(K.timers, TimerKind.PUMP.member(s), now)
        return len(dead)

    def _slot_leave(self, K: _K, run: str) -> None:
        st = self._state
        s = self._hdel(K.subof, run)
        if s is not None:
            st.zrem(K.held, run)
            st.zrem(K.ready, run)
            self._count(K, s, -1)
        if run in st.zsets.get(K.waiting, {}):
            st.zrem(K.waiting, run)
            if K.waiting not in st.zsets:
                st.srem(K.subs, K.sub)
        st.srem(K.unclaimed, run)

    def _slot_pump(
        self,
        K: _K,
        limit: float | None,
        paused: bool,
        env: int | None,
        now: int,
        exp: int,
        delay: int,
    ) -> list[str]:
        st = self._state
        if not paused:
            n = int(st.hashes.get(K.count, {}).get(K.sub, "0"))
            while limit is None or n < limit:
                head = st.zsorted(K.waiting)[:1]
                if not head:
                    break
                run, score = head[0]
                st.zrem(K.waiting, run)
                st.zadd(K.ready, run, score)
                st.hashes.setdefault(K.subof, {})[run] = K.sub
                n = self._count(K, K.sub, 1)
            if K.waiting not in st.zsets:
                st.srem(K.subs, K.sub)
        promoted: list[str] = []
        while env is None or len(st.zsets.get(K.held, {})) < env:
            head = st.zsorted(K.ready)[:1]
            if not head:
                break
            run = head[0][0]
            st.zrem(K.ready, run)
            st.zadd(K.held, run, exp)
            if run in st.sets.get(K.unclaimed, ()):
                st.zadd(
                    K.timers, TimerKind.PROMOTE.member(run), exp
                )  # its own message is on its way
            else:
                st.zadd(K.timers, TimerKind.PROMOTE.member(run), now + delay)
                promoted.append(run)
        if promoted:
            self._zadd_lt(K.timers, TimerKind.REAP.member(REAP_SLOTS_TARGET), exp + 1000)
        return promoted

    def _zadd_lt(self, key: str, member: str, score: float) -> None:
        current = self._state.zsets.get(key, {}).get(member)
        if current is None or score < current:
            self._state.zadd(key, member, score)

    def _slot_acquire(
        self,
        K: _K,
        run: str,
        score: float,
        limit: float | None,
        paused: bool,
        env: int | None,
        now: int,
        exp: int,
    ) -> bool:
        st = self._state
        self._slot_reap(K, now, K.sub)
        if run in st.zsets.get(K.held, {}):
            st.zadd(K.held, run, exp)
            st.zrem(K.timers, TimerKind.PROMOTE.member(run))
            return True
        if run not in st.zsets.get(K.ready, {}) and run not in st.zsets.get(K.waiting, {}):
            st.zadd(K.waiting, run, score)
            st.sadd(K.subs, K.sub)
        if run in self._slot_pump(K, limit, paused, env, now, exp, 0):
            st.zrem(K.timers, TimerKind.PROMOTE.member(run))
            return True
        return False

    def _slot_join(self, run: NewRun, created: Created) -> Created:
        """``slot_join.lua``: a new QUEUED run of a limited queue takes its place in line."""
        K = self._slot_k(run.join) if run.join is not None else None
        record = self._state.hashes.get(self.keys.run(run.run_id))
        if K is None or record is None or record.get("status") != RunStatus.QUEUED.value:
            return created
        assert run.join is not None
        limit, paused = self._slot_limit(K, run.join.env_limit)
        st, run_id = self._state, record.get("id", "")
        if (limit is None and not paused) or any(
            run_id in st.zsets.get(key, {}) for key in (K.held, K.ready, K.waiting)
        ):
            return created
        score = (
            (_number(record.get("queued_at")) or 0.0)
            - (_number(record.get("priority")) or 0.0)
            + (_number(record.get("seq")) or 0.0) / 1000
        )
        st.zadd(K.waiting, run_id, score)
        st.sadd(K.subs, K.sub)
        record["slot"] = K.sub
        st.sadd(K.unclaimed, run_id)
        return created

    # the slot part of claim_attempt.lua ----------------------------------------------------
    def _claim_scope(self, run_id: str, hint: SlotScope | None) -> SlotScope:
        """The run's own (sub-)queue: RedisStore corrects a wrong hint by claiming again."""
        record = self._state.hashes.get(self.keys.run(run_id)) or {}
        return SlotScope(
            record.get("queue", ""),
            record.get("ckey", ""),
            hint.env_limit if hint is not None else None,
        )

    def _admit(
        self, record: Record, scope: SlotScope, now: int, lease_ms: int, resuming: bool
    ) -> Claim | None:
        """None when the run may run now, else the claim's reply (``admit`` in the Lua)."""
        K = self._slot_k(scope)
        if K is None:
            return None
        limit, paused = self._slot_limit(K, scope.env_limit)
        if limit is None and not paused and not record.get("slot"):
            return None
        prio = 0.0
        if resuming or lua_float(record.get("attempt")) == 0:
            prio = _number(record.get("priority")) or 0.0
        queued = _number(record.get("queued_at"))
        score = (
            (now if queued is None else queued) - prio + (_number(record.get("seq")) or 0.0) / 1000
        )
        record["slot"] = K.sub
        self._state.srem(K.unclaimed, record.get("id", ""))
        if self._slot_acquire(
            K, record.get("id", ""), score, limit, paused, scope.env_limit, now, now + lease_ms
        ):
            return None
        return Claim("drop", reason="queued")

    def _slot_renew(self, run_id: str, exp: int) -> bool:
        """``renew_lease.lua``'s slot part: False when the run's slot lapsed and was reaped."""
        record = self._state.hashes.get(self.keys.run(run_id)) or {}
        if not record.get("slot"):
            return True
        held = self._state.zsets.get(self.keys.slots(), {})
        if record.get("id") not in held:
            return False
        held[record.get("id", "")] = float(exp)
        return True

    # slot_release.lua, slot_reap.lua and the queue views -----------------------------------
    def release_slot(
        self, run_id: str | None, scope: SlotScope, now_ms: int, handoff_ms: int, delay_ms: int
    ) -> list[str]:
        with self._lock:
            K = self._slot_k(scope)
            if K is None:
                return []
            if run_id:
                record = self._state.hashes.get(self.keys.run(run_id))
                if record is not None and record.get("status") == RunStatus.EXECUTING.value:
                    return []
                self._slot_leave(K, run_id)
                if record is not None:
                    record.pop("slot", None)
            self._slot_reap(K, now_ms, K.sub)
            limit, paused = self._slot_limit(K, scope.env_limit)
            return self._slot_pump(
                K, limit, paused, scope.env_limit, now_ms, now_ms + handoff_ms, delay_ms
            )

    def reap_slots(self, now_ms: int) -> int:
        with self._lock:
            k = self.keys
            K = _K("", "", "", k.slots(), k.slots_sub(), k.slots_count(), "", "", k.timers(), "")
            reaped = 0
            while True:
                n = self._slot_reap(K, now_ms, "")
                reaped += n
                if n < REAP_BATCH:
                    break
            first = self._state.zsorted(K.held)[:1]
            if first:
                self._zadd_lt(
                    K.timers, TimerKind.REAP.member(REAP_SLOTS_TARGET), first[0][1] + 1000
                )
            return reaped

    def queue_usage(self, name: str, now_ms: int) -> tuple[int, int]:
        with self._lock:
            k, st = self.keys, self._state
            subof = st.hashes.get(k.slots_sub(), {})
            mine = {run for run, sub in subof.items() if k.split_subqueue(sub)[0] == name}
            live = {run for run, exp in st.zsets.get(k.slots(), {}).items() if exp > now_ms}
            ready = set(st.zsets.get(k.slots_ready(), {}))
            waiting = sum(
                len(st.zsets.get(k.slot_waiting(sub), {}))
                for sub in st.sets.get(k.queue_subs(name), ())
            )
            return len(mine & live), len(mine & ready) + waiting

    def queue_subqueues(self, name: str) -> list[str]:
        with self._lock:
            return sorted(self._state.sets.get(self.keys.queue_subs(name), ()))

    def subqueue_waiting(self, name: str) -> dict[str, int]:
        with self._lock:
            st = self._state
            counts = {
                sub: len(st.zsets.get(self.keys.slot_waiting(sub), {}))
                for sub in st.sets.get(self.keys.queue_subs(name), ())
            }
            return {sub: n for sub, n in sorted(counts.items()) if n}

    def queue_names(self) -> list[str]:
        with self._lock:
            return sorted(self._state.sets.get(self.keys.queues(), ()))

    def put_queue(self, name: str, fields: dict[str, str]) -> None:
        with self._lock:
            self._state.hset(self.keys.queue(name), fields)
            self._state.sets.setdefault(self.keys.queues(), set()).add(name)

    def get_queue(self, name: str) -> Record | None:
        with self._lock:
            return self._hash_copy(self.keys.queue(name))
