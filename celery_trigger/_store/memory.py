"""MemoryStore: the Store protocol inside one process (embedded mode, users' unit tests).

It mirrors ``RedisStore`` and its Lua scripts operation by operation over a small in-memory
keyspace (``memory_state.MemoryState``) addressed by the same key names (``self.keys``), so
an argument that is a key name (``finish_attempt(idempotency_key=...)``,
``transition(remove_from=...)``) means the same thing to both stores.
``tests/store/test_contract*.py`` hold the two to the same behaviour.

Invariants:
- every public operation runs under one ``threading.RLock``, so it is atomic like a script
  (a Celery worker thread and the triggering thread share one instance);
- record values are the strings Redis would return: a number a script writes is formatted
  like Redis' Lua bridge (``lua_num``), a number Python passes as an argument with ``str``;
- sorted-set ranges order by (score, member); reversed ranges by (score, member) descending;
- a string key past its expiry (monotonic clock, like ``SET ... PX``) is absent; a key
  without one (wait keys without ttl, token keys without ttl: D-7) expires at ``math.inf``;
- an empty set, list or sorted set is removed, as Redis does (a waiters set that exists
  means "a run is parked on this member");
- records handed to callers are copies; only ``state`` exposes the internal keyspace.
"""

from __future__ import annotations

import math
import threading
from typing import Sequence

from .._keys import Keys
from .._vocab import (
    FINAL_VALUES,
    TOKEN_MEMBER_PREFIX,
    EventKind,
    RunStatus,
    TimerKind,
    WaitpointStatus,
)
from ..errors import StoreUnavailableError
from .base import (
    BrokerDelivery,
    Claim,
    Created,
    IdempotencyKey,
    NewRun,
    Record,
    ServerLocation,
    SlotScope,
    Transition,
)
from .memory_events import MemoryEvents, MemoryListener
from .memory_meta import MemoryMeta
from .memory_schedules import MemorySchedules
from .memory_slots import MemorySlots
from .memory_state import MemoryState, lua_float, lua_num, mono_ms


class MemoryStore(MemoryEvents, MemorySchedules, MemoryMeta, MemorySlots):
    """Run state in process memory. Example: ``MemoryStore(prefix="ct")``."""

    def __init__(self, *, prefix: str = "ct") -> None:
        self.keys = Keys(prefix)
        self._state = MemoryState()
        self._lock = threading.RLock()
        self._listeners: set[MemoryListener] = set()

    # runs -----------------------------------------------------------------------------
    def create_runs(self, runs: Sequence[NewRun], now_ms: int) -> list[Created]:
        with self._lock:
            return [self._slot_join(run, self._create(run, now_ms)) for run in runs]

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
            st.strings[key] = (run.run_id, mono_ms() + run.idempotency_ttl_ms)
        if k.run(run.run_id) in st.hashes:
            return Created(run.run_id, True)
        for member, due in run.timers:
            st.zadd(k.timers(), member, due)
        st.hset(k.run(run.run_id), dict(run.fields))
        created = float(run.fields.get("created") or now_ms)  # listings follow the record
        st.zadd(k.by_created(), run.run_id, created)
        if run.parent_id:
            st.lists.setdefault(k.children(run.parent_id), []).append(run.run_id)
        if run.pending_version:
            st.zadd(k.pending_version(run.task_id), run.run_id, now_ms)
        for tag in run.tags:
            st.zadd(k.tag(tag), run.run_id, created)
        self._emit(run.run_id, EventKind.CREATED)
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

    def claim_attempt(
        self,
        run_id: str,
        token: str,
        now_ms: int,
        lease_ms: int,
        mode: str,
        drop_timers: Sequence[str],
        *,
        scope: SlotScope | None = None,
    ) -> Claim:
        """``claim_attempt.lua``."""
        with self._lock:
            scope = self._claim_scope(run_id, scope)
            record = self._state.hashes.get(self.keys.run(run_id))
            if record is None:
                return Claim("missing")
            status = record.get("status", "")
            if status in FINAL_VALUES:
                return Claim("drop", reason=status)
            if mode == "warm":
                if status != RunStatus.EXECUTING.value or record.get("lease") != token:
                    return Claim("drop", reason="lease lost")
            elif status == RunStatus.EXECUTING.value:
                if lua_float(record.get("lease_exp")) > now_ms:
                    return Claim("drop", reason="executing")
            elif status == RunStatus.WAITING.value:
                # only a woken run resumes, in the same attempt and with its journal
                if record.get("woken") != "1":
                    return Claim("drop", reason="waiting")
                if (wait := self._admit(record, scope, now_ms, lease_ms, True)) is not None:
                    return wait
                record.update(
                    status=RunStatus.EXECUTING.value,
                    lease=token,
                    lease_exp=lua_num(now_ms + lease_ms),
                    woken="0",
                    resumed="1",
                    updated=lua_num(now_ms),
                    takeover="0",
                )
                self._drop_timers(drop_timers)
                self._lease_timer(record, now_ms + lease_ms + 1000)
                self._emit(run_id, EventKind.STATUS)
                return Claim("ok", record=dict(record))
            elif status not in (RunStatus.QUEUED.value, RunStatus.DEQUEUED.value):
                return Claim("drop", reason=status)
            never_started = "started" not in record
            if status == RunStatus.QUEUED.value and record.get("ttl") and never_started:
                queued_at = float(record.get("queued_at", now_ms))
                if now_ms >= queued_at + float(record["ttl"]) * 1000:
                    return Claim("drop", reason="ttl")
            if (
                mode != "warm"
                and (wait := self._admit(record, scope, now_ms, lease_ms, False)) is not None
            ):
                return wait
            attempt = float(record.get("attempt", "0")) + 1
            record.update(
                status=RunStatus.EXECUTING.value,
                lease=token,
                lease_exp=lua_num(now_ms + lease_ms),
                attempt=lua_num(attempt),
                attempt_started=lua_num(now_ms),
                updated=lua_num(now_ms),
                resumed="0",
                attempt_ms="0",
                takeover="1" if status == RunStatus.EXECUTING.value and mode != "warm" else "0",
            )
            self._state.lists.pop(self.keys.journal(run_id), None)  # a new attempt replays nothing
            self._lease_timer(record, now_ms + lease_ms + 1000)
            if never_started:
                record["started"] = lua_num(now_ms)
            self._drop_timers(drop_timers)
            self._emit(run_id, EventKind.STATUS)
            return Claim("ok", record=dict(record))

    def _drop_timers(self, members: Sequence[str]) -> None:
        for member in members:
            self._state.zrem(self.keys.timers(), member)

    def _lease_timer(self, record: Record, due_ms: int | None) -> None:
        """Arm (``due_ms``) or disarm (None) ``lease|<id>``, the dead-worker check."""
        if due_ms is None:
            self._state.zrem(self.keys.timers(), TimerKind.LEASE.member(record.get("id") or ""))
        else:
            self._state.zadd(
                self.keys.timers(), TimerKind.LEASE.member(record.get("id") or ""), due_ms
            )

    def _holds(self, run_id: str, token: str) -> bool:
        """The run is executing under ``token`` (the check every lease-guarded script makes)."""
        record = self._state.hashes.get(self.keys.run(run_id))
        return (
            record is not None
            and record.get("status") == RunStatus.EXECUTING.value
            and record.get("lease") == token
        )

    def renew_leases(
        self, leases: Sequence[tuple[str, str]], now_ms: int, lease_ms: int
    ) -> list[str]:
        """``renew_lease.lua`` per lease; returns the run ids whose lease was lost."""
        with self._lock:
            lost: list[str] = []
            for run_id, token in leases:
                if self._holds(run_id, token) and self._slot_renew(run_id, now_ms + lease_ms):
                    self._state.hashes[self.keys.run(run_id)]["lease_exp"] = str(now_ms + lease_ms)
                else:
                    lost.append(run_id)
            return lost

    def finish_attempt(
        self,
        run_id: str,
        token: str,
        status: str,
        now_ms: int,
        *,
        fields: dict[str, str],
        timers: Sequence[tuple[str, int]] = (),
        idempotency_key: IdempotencyKey | None = None,
        release_key: bool = False,
    ) -> int:
        """``finish_attempt.lua``."""
        with self._lock:
            st = self._state
            if not self._holds(run_id, token):
                return 0
            result = 1
            record = st.hashes[self.keys.run(run_id)]
            owner_id = record.get("id")
            record.update(status=status, lease="", lease_exp="0", updated=lua_num(now_ms))
            self._lease_timer(record, None)
            if status in FINAL_VALUES:
                record["finished"] = lua_num(now_ms)
                if self._notify_timer(run_id, owner_id, now_ms):
                    result = 2
            if status == RunStatus.QUEUED.value:
                record["queued_at"] = lua_num(now_ms)
            key = self._idem_name(idempotency_key)
            if key and release_key and st.get(key) == owner_id:
                st.delete(key)
            for member, due in timers:
                st.zadd(self.keys.timers(), member, due)
            if fields:
                st.hset(self.keys.run(run_id), fields)
            self._emit(run_id, EventKind.STATUS)
            return result

    def transition(
        self,
        run_id: str,
        now_ms: int,
        *,
        allowed: str,
        status: str = "",
        remove_timers: Sequence[str] = (),
        add_timers: Sequence[tuple[str, int]] = (),
        fields: dict[str, str] | None = None,
        pending_task: str | None = None,
    ) -> Transition:
        """``transition.lua``."""
        with self._lock:
            st, timers = self._state, self.keys.timers()
            record = st.hashes.get(self.keys.run(run_id))
            current = None if record is None else record.get("status")
            if record is None or current is None:
                return Transition(False, "")
            if allowed == "*":
                ok = current not in FINAL_VALUES
            else:
                ok = current in [s for s in allowed.split(",") if s]
            if not ok:
                return Transition(False, current)
            for member in remove_timers:
                st.zrem(timers, member)
            for member, due in add_timers:
                st.zadd(timers, member, due)
            if status:
                record.update(status=status, updated=lua_num(now_ms))
                if status in FINAL_VALUES:
                    record.update(finished=lua_num(now_ms), lease="", lease_exp="0")
                    self._lease_timer(record, None)
                    self._notify_timer(run_id, record.get("id"), now_ms)
                if status == RunStatus.QUEUED.value:
                    record["queued_at"] = lua_num(now_ms)
            if fields:
                st.hset(self.keys.run(run_id), fields)
            if pending_task and "id" in record:
                st.zrem(self.keys.pending_version(pending_task), record["id"])
            if status or fields:
                self._emit(run_id, EventKind.STATUS)
            return Transition(True, record.get("status", ""), dict(record))

    def _idem_name(self, key: IdempotencyKey | None) -> str:
        """The key name of a run idempotency key ("" for none)."""
        return self.keys.idempotency(key.task_id, key.key) if key else ""

    def _notify_timer(self, run_id: str, owner_id: str | None, now_ms: int) -> bool:
        """A run reached a final status: if runs are parked on it, schedule the safety net."""
        if self._state.sets.get(self.keys.waiters(run_id)):
            self._state.zadd(
                self.keys.timers(), TimerKind.NOTIFY.member(owner_id or ""), now_ms + 5000
            )
            return True
        return False

    def list_run_ids(
        self, *, index: str | None, before: tuple[int, str] | None, count: int
    ) -> list[tuple[str, int]]:
        with self._lock:
            return self._page(
                self.keys.tag(index) if index else self.keys.by_created(), before, count
            )

    def _page(self, key: str, before: tuple[int, str] | None, count: int) -> list[tuple[str, int]]:
        """Newest-first page of a creation-time index, strictly after the cursor."""
        out: list[tuple[str, int]] = []
        for member, score in reversed(self._state.zsorted(key)):
            if len(out) >= count:
                break
            ms = int(score)
            if before is None or ms < before[0] or (ms == before[0] and member < before[1]):
                out.append((member, ms))
        return out

    def delete_idempotency_key(self, task_id: str, key: str) -> bool:
        with self._lock:
            return self._state.delete(self.keys.idempotency(task_id, key))

    # durable execution --------------------------------------------------------------------
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

    def create_token(
        self,
        token_id: str,
        now_ms: int,
        *,
        key: str | None,
        key_ttl_ms: int,
        timeout_ms: int | None,
        fields: dict[str, str],
        tags: Sequence[str],
    ) -> Created:
        """``token_create.lua``: a new token, or the live owner of ``key`` (cached)."""
        with self._lock:
            st, keys = self._state, self.keys
            if key:
                owner = st.get(keys.token_idempotency(key))
                if owner is not None:
                    return Created(owner, True)
                expiry = mono_ms() + key_ttl_ms if key_ttl_ms > 0 else math.inf  # D-7
                st.strings[keys.token_idempotency(key)] = (token_id, expiry)
            st.hset(keys.token(token_id), dict(fields))
            st.zadd(keys.tokens_by_created(), token_id, now_ms)
            for tag in tags:
                st.zadd(keys.token_tag(tag), token_id, now_ms)
            if timeout_ms is not None:
                st.zadd(keys.timers(), TimerKind.TOKEN_TIMEOUT.member(token_id), timeout_ms)
            return Created(token_id, False)

    def get_token(self, token_id: str) -> Record | None:
        with self._lock:
            return self._hash_copy(self.keys.token(token_id))

    def complete_token(
        self, token_id: str, now_ms: int, status: str, field: str, value: str
    ) -> tuple[str, list[str]]:
        """``token_complete.lua``: first wins; ``ok`` comes with the parked waiters."""
        with self._lock:
            st, timers = self._state, self.keys.timers()
            token = st.hashes.get(self.keys.token(token_id))
            current = None if token is None else token.get("status")
            if token is None or current is None:
                return "missing", []
            if current != WaitpointStatus.WAITING.value:
                return "done", []
            owner_id = token.get("id")
            token.update({"status": status, "completed_at": str(now_ms)})
            token[field] = value
            st.zrem(timers, TimerKind.TOKEN_TIMEOUT.member(owner_id or ""))
            waiters = sorted(st.sets.get(self.keys.waiters(f"token:{token_id}"), ()))
            if waiters:
                st.zadd(
                    timers,
                    TimerKind.NOTIFY.member(f"{TOKEN_MEMBER_PREFIX}{owner_id}"),
                    now_ms + 5000,
                )
            return "ok", waiters

    def list_token_ids(
        self, *, tag: str | None, before: tuple[int, str] | None, count: int
    ) -> list[tuple[str, int]]:
        with self._lock:
            key = self.keys.token_tag(tag) if tag else self.keys.tokens_by_created()
            return self._page(key, before, count)

    def remove_timers(self, members: Sequence[str]) -> None:
        with self._lock:
            for member in members:
                self._state.zrem(self.keys.timers(), member)

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

    def enqueue(self, delivery: BrokerDelivery, *, front: bool = False) -> None:
        """No broker shares this store: the caller publishes through Celery (``location`` is
        None, so the direct-enqueue path is never enabled)."""
        raise NotImplementedError("MemoryStore has no broker queues")

    # housekeeping -----------------------------------------------------------------------
    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass

    @property
    def state(self) -> MemoryState:
        """The in-memory keyspace (tests inspect it; not part of ``Store``)."""
        return self._state

    def location(self) -> ServerLocation | None:
        return None
