"""MemoryStore: the Store protocol inside one process (embedded mode, users' unit tests).

It mirrors ``RedisStore`` and its Lua scripts operation by operation over a small in-memory
keyspace addressed by the same key names (``self.keys``), so an argument that is a key name
(``finish_attempt(idempotency_key=...)``, ``transition(remove_from=...)``) means the same
thing to both stores. ``tests/store/test_contract.py`` holds the two to the same behaviour.

Invariants:
- every public operation runs under one ``threading.RLock``, so it is atomic like a script
  (a Celery worker thread and the triggering thread share one instance);
- record values are the strings Redis would return: a number a script writes is formatted
  like Redis' Lua bridge (``%.17g``: plain decimal for integers below 1e17);
- sorted-set ranges order by (score, member); reversed ranges by (score, member) descending;
- an idempotency key past its expiry (monotonic clock, like ``SET ... PX``) is absent;
- records handed to callers are copies; only ``raw()`` exposes the internal state.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Sequence

from .._keys import Keys
from ..errors import StoreUnavailableError
from .base import Claim, Created, NewRun, Record, Transition

FINAL = frozenset(
    {"COMPLETED", "CANCELED", "FAILED", "CRASHED", "SYSTEM_FAILURE", "EXPIRED", "TIMED_OUT"}
)


def _num(value: float) -> str:
    """A number as a Lua script writes it into Redis (Redis 7.0 formats with ``%.17g``)."""
    return format(float(value), ".17g")


def _now_ms() -> float:
    return time.monotonic() * 1000.0


@dataclass
class MemoryState:
    """The keyspace: one dict per Redis type, keyed by the full key name."""

    hashes: dict[str, dict[str, str]] = field(default_factory=dict)
    zsets: dict[str, dict[str, float]] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    sets: dict[str, set[str]] = field(default_factory=dict)
    strings: dict[str, tuple[str, float]] = field(default_factory=dict)  # value, expiry (ms)

    def get(self, key: str) -> str | None:
        entry = self.strings.get(key)
        if entry is None:
            return None
        if entry[1] <= _now_ms():
            del self.strings[key]
            return None
        return entry[0]

    def delete(self, key: str) -> bool:
        return self.get(key) is not None and self.strings.pop(key, None) is not None

    def hset(self, key: str, fields: dict[str, str]) -> None:
        if not fields:  # Redis rejects an HSET without pairs; keep the two stores alike
            raise StoreUnavailableError("wrong number of arguments for 'hset' command")
        self.hashes.setdefault(key, {}).update(fields)

    def zadd(self, key: str, member: str, score: float) -> None:
        self.zsets.setdefault(key, {})[member] = float(score)

    def zrem(self, key: str, member: str) -> None:
        zset = self.zsets.get(key)
        if zset is not None:
            zset.pop(member, None)
            if not zset:
                del self.zsets[key]

    def zsorted(self, key: str) -> list[tuple[str, float]]:
        """Members by (score, member) ascending, like ZRANGE."""
        return sorted(self.zsets.get(key, {}).items(), key=lambda row: (row[1], row[0]))

    def zrange_upto(self, key: str, high: float, limit: int) -> list[str]:
        """``ZRANGEBYSCORE key -inf high LIMIT 0 limit`` (a negative limit means all)."""
        rows = [member for member, score in self.zsorted(key) if score <= high]
        return rows if limit < 0 else rows[:limit]


class MemoryStore:
    """Run state in process memory. Example: ``MemoryStore(prefix="ct")``."""

    def __init__(self, *, prefix: str = "ct") -> None:
        self.keys = Keys(prefix)
        self._state = MemoryState()
        self._lock = threading.RLock()

    # runs -----------------------------------------------------------------------------
    def create_runs(self, runs: Sequence[NewRun], now_ms: int) -> list[Created]:
        with self._lock:
            return [self._create(run, now_ms) for run in runs]

    def _create(self, run: NewRun, now_ms: int) -> Created:
        """``create_run.lua``."""
        k, st = self.keys, self._state
        if run.idempotency_key:
            key = k.idempotency(run.task_id, run.idempotency_key)
            owner = st.get(key)
            if owner is not None and owner != (run.replace_owner or ""):
                return Created(owner, True)
            if run.idempotency_ttl_ms <= 0:  # what SET ... PX answers
                raise StoreUnavailableError("invalid expire time in 'set' command")
            st.strings[key] = (run.run_id, _now_ms() + run.idempotency_ttl_ms)
        if k.run(run.run_id) in st.hashes:
            return Created(run.run_id, True)
        for member, due in run.timers:
            st.zadd(k.timers(), member, due)
        st.hset(k.run(run.run_id), dict(run.fields))
        st.zadd(k.by_created(), run.run_id, now_ms)
        if run.parent_id:
            st.lists.setdefault(k.children(run.parent_id), []).append(run.run_id)
        if run.pending_version:
            st.zadd(k.pending_version(run.task_id), run.run_id, now_ms)
        for tag in run.tags:
            st.zadd(k.tag(tag), run.run_id, now_ms)
        return Created(run.run_id, False)

    def get_run(self, run_id: str) -> Record | None:
        with self._lock:
            record = self._state.hashes.get(self.keys.run(run_id))
            return None if record is None else dict(record)

    def get_runs(self, run_ids: Sequence[str]) -> list[Record | None]:
        with self._lock:
            return [self.get_run(run_id) for run_id in run_ids]

    def children(self, run_id: str) -> list[str]:
        with self._lock:
            return list(self._state.lists.get(self.keys.children(run_id), []))

    def claim_attempt(self, run_id: str, token: str, now_ms: int, lease_ms: int, mode: str,
                      drop_timers: Sequence[str]) -> Claim:
        """``claim_attempt.lua``."""
        with self._lock:
            record = self._state.hashes.get(self.keys.run(run_id))
            if record is None:
                return Claim("missing")
            status = record.get("status", "")
            if status in FINAL:
                return Claim("drop", reason=status)
            if mode == "warm":
                if status != "EXECUTING" or record.get("lease") != token:
                    return Claim("drop", reason="lease lost")
            elif status == "EXECUTING":
                if _float(record.get("lease_exp")) > now_ms:
                    return Claim("drop", reason="executing")
            elif status not in ("QUEUED", "DEQUEUED"):
                return Claim("drop", reason=status)
            never_started = "started" not in record
            if status == "QUEUED" and record.get("ttl") and never_started:
                queued_at = float(record.get("queued_at", now_ms))
                if now_ms >= queued_at + float(record["ttl"]) * 1000:
                    return Claim("drop", reason="ttl")
            attempt = float(record.get("attempt", "0")) + 1
            record.update(status="EXECUTING", lease=token, lease_exp=_num(now_ms + lease_ms),
                          attempt=_num(attempt), attempt_started=_num(now_ms),
                          updated=_num(now_ms))
            if never_started:
                record["started"] = _num(now_ms)
            for member in drop_timers:
                self._state.zrem(self.keys.timers(), member)
            return Claim("ok", record=dict(record))

    def renew_leases(self, leases: Sequence[tuple[str, str]], now_ms: int,
                     lease_ms: int) -> list[str]:
        """``renew_lease.lua`` per lease; returns the run ids whose lease was lost."""
        with self._lock:
            lost: list[str] = []
            for run_id, token in leases:
                record = self._state.hashes.get(self.keys.run(run_id))
                if record and record.get("status") == "EXECUTING" and record.get("lease") == token:
                    record["lease_exp"] = str(now_ms + lease_ms)
                else:
                    lost.append(run_id)
            return lost

    def finish_attempt(self, run_id: str, token: str, status: str, now_ms: int, *,
                       fields: dict[str, str], timers: Sequence[tuple[str, int]] = (),
                       idempotency_key: str | None = None, release_key: bool = False) -> bool:
        """``finish_attempt.lua``; ``idempotency_key`` is the key's name (``keys.idempotency``)."""
        with self._lock:
            st = self._state
            record = st.hashes.get(self.keys.run(run_id))
            if record is None or record.get("status") != "EXECUTING" or record.get(
                    "lease") != token:
                return False
            owner_id = record.get("id")
            record.update(status=status, lease="", lease_exp="0", updated=_num(now_ms))
            if status in FINAL:
                record["finished"] = _num(now_ms)
            if status == "QUEUED":
                record["queued_at"] = _num(now_ms)
            if idempotency_key and release_key and st.get(idempotency_key) == owner_id:
                st.delete(idempotency_key)
            for member, due in timers:
                st.zadd(self.keys.timers(), member, due)
            if fields:
                st.hset(self.keys.run(run_id), fields)
            return True

    def transition(self, run_id: str, now_ms: int, *, allowed: str, status: str = "",
                   remove_timers: Sequence[str] = (), add_timers: Sequence[tuple[str, int]] = (),
                   fields: dict[str, str] | None = None,
                   remove_from: str | None = None) -> Transition:
        """``transition.lua``; ``remove_from`` is a sorted set's key name."""
        with self._lock:
            st, timers = self._state, self.keys.timers()
            record = st.hashes.get(self.keys.run(run_id))
            current = None if record is None else record.get("status")
            if record is None or current is None:
                return Transition(False, "")
            if allowed == "*":
                ok = current not in FINAL
            else:
                ok = current in [s for s in allowed.split(",") if s]
            if not ok:
                return Transition(False, current)
            for member in remove_timers:
                st.zrem(timers, member)
            for member, due in add_timers:
                st.zadd(timers, member, due)
            if status:
                record.update(status=status, updated=_num(now_ms))
                if status in FINAL:
                    record.update(finished=_num(now_ms), lease="", lease_exp="0")
                if status == "QUEUED":
                    record["queued_at"] = _num(now_ms)
            if fields:
                st.hset(self.keys.run(run_id), fields)
            if remove_from and "id" in record:
                st.zrem(remove_from, record["id"])
            return Transition(True, record.get("status", ""), dict(record))

    def list_run_ids(self, *, index: str | None, before: tuple[int, str] | None,
                     count: int) -> list[tuple[str, int]]:
        with self._lock:
            key = self.keys.tag(index) if index else self.keys.by_created()
            rows = reversed(self._state.zsorted(key))
            out: list[tuple[str, int]] = []
            for member, score in rows:
                if len(out) >= count:
                    break
                ms = int(score)
                if before is None or ms < before[0] or (ms == before[0] and member < before[1]):
                    out.append((member, ms))
            return out

    def delete_idempotency_key(self, task_id: str, key: str) -> bool:
        with self._lock:
            return self._state.delete(self.keys.idempotency(task_id, key))

    # timers ---------------------------------------------------------------------------
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

    # batches, queues, task definitions ------------------------------------------------
    def put_batch(self, batch_id: str, fields: dict[str, str]) -> None:
        with self._lock:
            self._state.hset(self.keys.batch(batch_id), fields)

    def get_batch(self, batch_id: str) -> Record | None:
        with self._lock:
            return self._hash_copy(self.keys.batch(batch_id))

    def put_queue(self, name: str, fields: dict[str, str]) -> None:
        with self._lock:
            self._state.hset(self.keys.queue(name), fields)
            self._state.sets.setdefault(self.keys.queues(), set()).add(name)

    def get_queue(self, name: str) -> Record | None:
        with self._lock:
            return self._hash_copy(self.keys.queue(name))

    def put_task_defs(self, defs: dict[str, str]) -> None:
        with self._lock:
            if defs:
                self._state.hset(self.keys.task_defs(), defs)

    def get_task_def(self, task_id: str) -> str | None:
        with self._lock:
            return self._state.hashes.get(self.keys.task_defs(), {}).get(task_id)

    def pending_runs(self, task_id: str, limit: int) -> list[str]:
        with self._lock:
            if limit <= 0:
                return []
            rows = self._state.zsorted(self.keys.pending_version(task_id))
            return [member for member, _ in rows[:limit]]

    def _hash_copy(self, key: str) -> Record | None:
        record = self._state.hashes.get(key)
        return None if record is None else dict(record)

    # housekeeping -----------------------------------------------------------------------
    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def raw(self) -> MemoryState:
        return self._state


def _float(value: str | None) -> float:
    """Lua's ``tonumber(v or "0") or 0``: a missing or unreadable number counts as zero."""
    try:
        return float(value or "0")
    except ValueError:
        return 0.0
