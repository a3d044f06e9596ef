"""Run records in memory (``RunStore``): ``create_run.lua``, ``claim_attempt.lua``,
``finish_attempt.lua``, ``transition.lua``, ``renew_lease.lua`` in Python, under the lock.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..._vocab import (
    FINAL_VALUES,
    EventKind,
    RunStatus,
)
from ...errors import StoreUnavailableError
from ..types import (
    Claim,
    Created,
    IdempotencyKey,
    NewBatch,
    NewRun,
    Record,
    SlotScope,
    Transition,
)
from .events import MemoryEvents
from .slots import MemorySlots
from .state import lua_float, lua_num, mono_ms


class MemoryRuns(MemorySlots, MemoryEvents):
    """Run records in memory (``RunStore``): ``create_run.lua``, ``claim_attempt.lua``,"""

    def create_runs(
        self, runs: Sequence[NewRun], now_ms: int, *, batch: NewBatch | None = None
    ) -> list[Created]:
        with self._lock:
            try:
                return [self._slot_join(run, self._create(run, now_ms)) for run in runs]
            finally:
                if batch is not None:  # batch_put.lua: written even when a create failed
                    self._batch_put(runs, batch)

    def _batch_put(self, runs: Sequence[NewRun], batch: NewBatch) -> None:
        ids = []
        for run in runs:
            key = self.keys.idempotency(run.task_id, run.idempotency_key or "")
            owner = self._state.get(key) if run.idempotency_key else None
            ids.append(owner or run.run_id)
        fields = {"runs": json.dumps(ids), **batch.fields}
        self._state.hset(self.keys.batch(batch.batch_id), fields)

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
        timers = [*timers, *self._retire_timer(run_id, status, now_ms)]  # type: ignore[attr-defined]
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
        add_timers = [*add_timers, *self._retire_timer(run_id, status, now_ms)]  # type: ignore[attr-defined]
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

    def list_run_ids(
        self, *, index: str | None, before: tuple[int, str] | None, count: int
    ) -> list[tuple[str, int]]:
        with self._lock:
            return self._page(
                self.keys.tag(index) if index else self.keys.by_created(), before, count
            )

    def put_batch(self, batch_id: str, fields: dict[str, str]) -> None:
        with self._lock:
            self._state.hset(self.keys.batch(batch_id), fields)

    def get_batch(self, batch_id: str) -> Record | None:
        with self._lock:
            return self._hash_copy(self.keys.batch(batch_id))
