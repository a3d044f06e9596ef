"""Run records on Redis (``RunStore``): ``create_run.lua``, ``claim_attempt.lua``,
``finish_attempt.lua``, ``transition.lua``, ``renew_lease.lua``, listings and batches.

Each script that changes a run passes its event keys (``events.py``), so a script touches
only keys it was given. Creating many runs is one pipeline (with ``slot_join.lua`` after
each run that joins a limited queue).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from ..types import (
    BrokerDelivery,
    Claim,
    Created,
    IdempotencyKey,
    NewBatch,
    NewRun,
    Record,
    SlotScope,
    Transition,
)
from .client import ScriptArg, flatten, pairs
from .events import RunIdentity, event_block
from .slots import RedisSlots


class RedisRuns(RedisSlots):
    """Run records on Redis (``RunStore``): ``create_run.lua``, ``claim_attempt.lua``,"""

    def _create_args(self, run: NewRun, now_ms: int) -> tuple[list[str], list[ScriptArg]]:
        k = self.keys
        keys = [
            k.run(run.run_id),
            k.by_created(),
            k.timers(),
            self._idem_of(run),
            k.children(run.parent_id) if run.parent_id else "",
            k.pending_version(run.task_id) if run.pending_version else "",
            run.enqueue.queue if run.enqueue else "",
            *(k.tag(t) for t in run.tags),
        ]
        # a new record: its own tags and batch name its event keys (no guess, no stale reply)
        identity = RunIdentity.of_record(run.fields)
        self._identities.put(run.run_id, identity)
        ev_keys, spec = event_block(k, run.run_id, identity)
        keys.extend(ev_keys)
        args: list[ScriptArg] = [
            run.run_id,
            now_ms,
            run.idempotency_ttl_ms,
            run.replace_owner or "",
            run.enqueue.envelope if run.enqueue else "",
            len(run.timers),
        ]
        for member, due in run.timers:
            args.append(member)
            args.append(due)
        args.append(json.dumps(run.fields, separators=(",", ":")))
        args.append(spec)
        return keys, args

    def create_runs(
        self, runs: Sequence[NewRun], now_ms: int, *, batch: NewBatch | None = None
    ) -> list[Created]:
        script = self._scripts["create_run"]
        if len(runs) == 1 and runs[0].join is None and batch is None:
            keys, args = self._create_args(runs[0], now_ms)
            run_id, cached = script(keys=keys, args=args)
            return [Created(run_id, bool(int(cached)))]
        # a batch: one MULTI/EXEC with its record last (batch_put.lua), so a client that dies
        # or a failing create never leaves runs without their batch
        pipe = self._client.pipeline(transaction=batch is not None)
        for run in runs:
            keys, args = self._create_args(run, now_ms)
            script(keys=keys, args=args, client=pipe)
            if run.join is not None:
                self._join(run.run_id, run.join, pipe)  # its place in line (slot_join.lua)
        if batch is not None:
            self._scripts["batch_put"](
                keys=[self.keys.batch(batch.batch_id), *(self._idem_of(r) for r in runs)],
                args=[len(runs), *(r.run_id for r in runs), json.dumps(batch.fields)],
                client=pipe,
            )
        return [Created(r[0], bool(int(r[1]))) for r in pipe.execute() if isinstance(r, list)]

    def _idem_of(self, run: NewRun) -> str:
        """A new run's idempotency key name ("" for none)."""
        return (
            self.keys.idempotency(run.task_id, run.idempotency_key) if run.idempotency_key else ""
        )

    def get_run(self, run_id: str) -> Record | None:
        data: Record = self._client.hgetall(self.keys.run(run_id))
        self._identities.remember(run_id, data)
        return data or None

    def get_runs(self, run_ids: Sequence[str]) -> list[Record | None]:
        pipe = self._client.pipeline(transaction=False)
        for run_id in run_ids:
            pipe.hgetall(self.keys.run(run_id))
        records: list[Record] = pipe.execute()
        for run_id, record in zip(run_ids, records, strict=True):
            self._identities.remember(run_id, record)
        return [r or None for r in records]

    def children(self, run_id: str) -> list[str]:
        return list(self._client.lrange(self.keys.children(run_id), 0, -1))

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
        reply = self._claim_reply(run_id, token, now_ms, lease_ms, mode, drop_timers, scope)
        if reply[0] == "ok":
            record = pairs(reply, 1)
            self._identities.remember(run_id, record)
            return Claim("ok", record=record)
        # a record without a status field comes back as a nil reason
        return Claim(reply[0], reason=(reply[1] or "") if len(reply) > 1 else "")

    def renew_leases(
        self, leases: Sequence[tuple[str, str]], now_ms: int, lease_ms: int
    ) -> list[str]:
        """Extend each lease still held; return the run ids whose lease was lost."""
        if not leases:
            return []
        script = self._scripts["renew_lease"]
        pipe = self._client.pipeline(transaction=False)
        for run_id, token in leases:
            script(
                keys=[self.keys.run(run_id), self.keys.slots()],
                args=[token, now_ms + lease_ms],
                client=pipe,
            )
        replies = pipe.execute()
        return [run_id for (run_id, _), ok in zip(leases, replies, strict=True) if not int(ok)]

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
        timers = [*timers, *self._retire_timer(run_id, status, now_ms)]  # type: ignore[attr-defined]
        args: list[ScriptArg] = [now_ms, token, status, "1" if release_key else "0", len(timers)]
        for member, due in timers:
            args.append(member)
            args.append(due)
        args.extend(flatten(fields))
        ok = self._evalrun(
            "finish_attempt",
            run_id,
            [
                self.keys.run(run_id),
                self.keys.timers(),
                self._idem_name(idempotency_key),
                self.keys.waiters(run_id),
            ],
            args,
        )
        return int(ok)

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
        add_timers = [*add_timers, *self._retire_timer(run_id, status, now_ms)]  # type: ignore[attr-defined]
        args: list[ScriptArg] = [
            now_ms,
            allowed,
            status,
            len(remove_timers),
            *remove_timers,
            len(add_timers),
        ]
        for member, due in add_timers:
            args.append(member)
            args.append(due)
        args.extend(flatten(fields or {}))
        reply = self._evalrun(
            "transition",
            run_id,
            [
                self.keys.run(run_id),
                self.keys.timers(),
                self.keys.pending_version(pending_task) if pending_task else "",
                self.keys.waiters(run_id),
            ],
            args,
        )
        if reply[0] == "ok":
            record = pairs(reply, 1)
            self._identities.remember(run_id, record)
            return Transition(True, record.get("status", ""), record)
        return Transition(False, reply[1])

    def list_run_ids(
        self, *, index: str | None, before: tuple[int, str] | None, count: int
    ) -> list[tuple[str, int]]:
        key = self.keys.tag(index) if index else self.keys.by_created()
        return self._page(key, before, count)

    def put_batch(self, batch_id: str, fields: dict[str, str]) -> None:
        self._client.hset(self.keys.batch(batch_id), mapping=fields)

    def get_batch(self, batch_id: str) -> Record | None:
        return self._client.hgetall(self.keys.batch(batch_id)) or None

    def enqueue(self, delivery: BrokerDelivery, *, front: bool = False) -> None:
        """Push a prepared Celery message onto a broker queue on this server (fast path);
        ``front``: where kombu pops next (a promoted run takes up its slot at once)."""
        (self._client.rpush if front else self._client.lpush)(delivery.queue, delivery.envelope)
