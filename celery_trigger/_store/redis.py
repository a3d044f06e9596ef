"""RedisStore: the Store protocol on Redis. The only module that imports ``redis``.

Each multi-key invariant is one Lua script from ``lua/`` (its header states KEYS, ARGV and
the reply). Every ``redis.RedisError`` is turned into ``StoreUnavailableError`` here, so no
caller ever sees a redis-py exception.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any, Callable, Sequence, TypeVar

import redis

from .._keys import Keys
from .._vocab import lua_prelude
from ..errors import StoreUnavailableError
from .base import (
    BrokerDelivery,
    Claim,
    Created,
    Feed,
    IdempotencyKey,
    MetaResult,
    MetaUpdate,
    NewRun,
    Record,
    ServerLocation,
    SlotScope,
    Transition,
    feed_key,
    schedule_timer,
)
from .redis_events import (
    MAX_STALE_RETRIES,
    IdentityCache,
    RunIdentity,
    event_block,
    stale_identity,
)
from .redis_slots import OPERATIONS, RedisSlots, include

F = TypeVar("F", bound=Callable[..., Any])


def _wrapped(fn: F) -> F:
    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise StoreUnavailableError(f"Redis error in {fn.__name__}: {exc}") from exc

    return inner  # type: ignore[return-value]


def _read(name: str) -> str:
    return resources.files(__package__).joinpath("lua").joinpath(f"{name}.lua").read_text("utf-8")


def _load(name: str) -> str:
    """The script's text: the vocabulary prelude, then the script with its includes (the
    ``-- #include slots`` / ``events`` lines: shared functions)."""
    return lua_prelude() + include(_read(name), _read)


def _pairs(record: list[str], start: int = 0) -> Record:
    it = iter(record[start:])
    return dict(zip(it, it, strict=False))  # consecutive (field, value) pairs


def _scored(rows: Any) -> list[tuple[str, int]]:
    """``(member, score)`` rows of a ``withscores`` range, scores as integer ms."""
    return [(str(member), int(score)) for member, score in rows]


def _flatten(fields: dict[str, str]) -> list[str]:
    out: list[str] = []
    for key, value in fields.items():
        out.append(key)
        out.append(value)
    return out


class RedisStore(RedisSlots):
    """Run state in Redis. Example: ``RedisStore("redis://localhost:6379/0", prefix="ct")``."""

    def __init__(self, url: str, *, prefix: str = "ct") -> None:
        self.url = url
        self.keys = Keys(prefix)
        # Any: with decode_responses every reply is str, which redis-py's types cannot say
        self._client: Any = redis.Redis.from_url(
            url, decode_responses=True, health_check_interval=30
        )
        self._identities = IdentityCache()
        self._scripts = {
            name: self._client.register_script(_load(name))
            for name in (
                "create_run",
                "claim_attempt",
                "finish_attempt",
                "claim_timers",
                "transition",
                "renew_lease",
                "park",
                "notify",
                "wake",
                "journal_append",
                "token_create",
                "token_complete",
                "schedule_put",
                "schedule_advance",
                "schedule_delete",
                "metadata_apply",
                "tags_add",
                "idem_clear",
                "slot_release",
                "slot_reap",
                "slot_join",
                "stream_append",
            )
        }

    def _evalrun(
        self,
        name: str,
        run_id: str,
        keys: list[str],
        args: list[Any],
        *,
        extra_tags: Sequence[str] = (),
    ) -> Any:
        """Run a script that emits ``run_id``'s events (``lua/events.lua``): its event keys
        come from the identity cache, and a stale reply is retried with the record's."""
        identity = self._identities.get(run_id)
        for _ in range(MAX_STALE_RETRIES):
            ev_keys, spec = event_block(self.keys, run_id, identity, extra_tags)
            try:
                return self._scripts[name](keys=[*keys, *ev_keys], args=[*args, spec])
            except redis.ResponseError as exc:
                fresh = stale_identity(str(exc))
                if fresh is None:
                    raise
                identity = fresh
                self._identities.put(run_id, fresh)
        raise StoreUnavailableError(f"{name}: the tags of run {run_id} kept changing")

    # runs -----------------------------------------------------------------------------
    def _create_args(self, run: NewRun, now_ms: int) -> tuple[list[str], list[Any]]:
        k = self.keys
        keys = [
            k.run(run.run_id),
            k.by_created(),
            k.timers(),
            k.idempotency(run.task_id, run.idempotency_key) if run.idempotency_key else "",
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
        args: list[Any] = [
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

    @_wrapped
    def create_runs(self, runs: Sequence[NewRun], now_ms: int) -> list[Created]:
        script = self._scripts["create_run"]
        if len(runs) == 1 and runs[0].join is None:
            keys, args = self._create_args(runs[0], now_ms)
            run_id, cached = script(keys=keys, args=args)
            return [Created(run_id, bool(int(cached)))]
        pipe = self._client.pipeline(transaction=False)
        for run in runs:
            keys, args = self._create_args(run, now_ms)
            script(keys=keys, args=args, client=pipe)
            if run.join is not None:
                self._join(run.run_id, run.join, pipe)  # its place in line (slot_join.lua)
        return [Created(r[0], bool(int(r[1]))) for r in pipe.execute() if isinstance(r, list)]

    @_wrapped
    def get_run(self, run_id: str) -> Record | None:
        data: Record = self._client.hgetall(self.keys.run(run_id))
        self._identities.remember(run_id, data)
        return data or None

    @_wrapped
    def get_runs(self, run_ids: Sequence[str]) -> list[Record | None]:
        pipe = self._client.pipeline(transaction=False)
        for run_id in run_ids:
            pipe.hgetall(self.keys.run(run_id))
        records: list[Record] = pipe.execute()
        for run_id, record in zip(run_ids, records, strict=True):
            self._identities.remember(run_id, record)
        return [r or None for r in records]

    @_wrapped
    def children(self, run_id: str) -> list[str]:
        return list(self._client.lrange(self.keys.children(run_id), 0, -1))

    @_wrapped
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
            record = _pairs(reply, 1)
            self._identities.remember(run_id, record)
            return Claim("ok", record=record)
        # a record without a status field comes back as a nil reason
        return Claim(reply[0], reason=(reply[1] or "") if len(reply) > 1 else "")

    @_wrapped
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

    @_wrapped
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
        args: list[Any] = [now_ms, token, status, "1" if release_key else "0", len(timers)]
        for member, due in timers:
            args.append(member)
            args.append(due)
        args.extend(_flatten(fields))
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

    def _idem_name(self, key: IdempotencyKey | None) -> str:
        """The key name of a run idempotency key ("" for none)."""
        return self.keys.idempotency(key.task_id, key.key) if key else ""

    @_wrapped
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
        args: list[Any] = [
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
        args.extend(_flatten(fields or {}))
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
            record = _pairs(reply, 1)
            self._identities.remember(run_id, record)
            return Transition(True, record.get("status", ""), record)
        return Transition(False, reply[1])

    @_wrapped
    def list_run_ids(
        self, *, index: str | None, before: tuple[int, str] | None, count: int
    ) -> list[tuple[str, int]]:
        key = self.keys.tag(index) if index else self.keys.by_created()
        return self._page(key, before, count)

    def _page(self, key: str, before: tuple[int, str] | None, count: int) -> list[tuple[str, int]]:
        """Newest-first page of a creation-time index, strictly after the cursor."""
        if count <= 0:
            return []
        if before is None:
            return _scored(
                self._client.zrevrangebyscore(
                    key, "+inf", "-inf", start=0, num=count, withscores=True
                )
            )
        # Members sharing the cursor's score (a batch is created in one ms) sort by member
        # descending; those at or above the cursor can fill any fixed-size page, so keep
        # paging until ``count`` rows pass the filter or the range runs out.
        out: list[tuple[str, int]] = []
        offset, page = 0, count + 50
        while len(out) < count:
            rows = _scored(
                self._client.zrevrangebyscore(
                    key, before[0], "-inf", start=offset, num=page, withscores=True
                )
            )
            out.extend(
                (m, s) for m, s in rows if s < before[0] or (s == before[0] and m < before[1])
            )
            if len(rows) < page:
                break
            offset += page
        return out[:count]

    @_wrapped
    def delete_idempotency_key(self, task_id: str, key: str) -> bool:
        return bool(self._client.delete(self.keys.idempotency(task_id, key)))

    # durable execution --------------------------------------------------------------------
    @_wrapped
    def journal(self, run_id: str) -> list[str]:
        return list(self._client.lrange(self.keys.journal(run_id), 0, -1))

    @_wrapped
    def journal_append(self, run_id: str, token: str, k: int, entry: str) -> int:
        return int(
            self._scripts["journal_append"](
                keys=[self.keys.run(run_id), self.keys.journal(run_id)], args=[token, k, entry]
            )
        )

    @_wrapped
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
        args: list[Any] = [
            now_ms,
            token,
            k,
            entry,
            "" if due_ms is None else due_ms,
            f"{run_id}|{k}",
            len(fields),
            *_flatten(fields),
            *members,
        ]
        return str(self._evalrun("park", run_id, keys, args))

    @_wrapped
    def waiters(self, member: str) -> list[str]:
        return list(self._client.smembers(self.keys.waiters(member)))

    @_wrapped
    def notify(self, waiter: str, member: str, now_ms: int, safety_ms: int) -> bool:
        run_id, _, k = waiter.rpartition("|")
        return bool(
            self._scripts["notify"](
                keys=[self.keys.run(run_id), self.keys.awaiting(run_id), self.keys.timers()],
                args=[now_ms, k, member, safety_ms],
            )
        )

    @_wrapped
    def wake(self, run_id: str) -> Record | None:
        reply = self._scripts["wake"](keys=[self.keys.run(run_id)], args=[])
        if not reply:
            return None
        record = _pairs(reply)
        self._identities.remember(run_id, record)
        return record

    @_wrapped
    def wait_key(self, key: str, due_ms: int, ttl_ms: int | None) -> int:
        name = self.keys.wait_idempotency(key)
        pipe = self._client.pipeline(transaction=True)
        if ttl_ms:
            pipe.set(name, due_ms, nx=True, px=ttl_ms)
        else:
            pipe.set(name, due_ms, nx=True)
        pipe.get(name)
        return int(pipe.execute()[1])

    @_wrapped
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
        k_ = self.keys
        keys = [
            k_.token(token_id),
            k_.token_idempotency(key) if key else "",
            k_.timers(),
            k_.tokens_by_created(),
            *(k_.token_tag(t) for t in tags),
        ]
        args: list[Any] = [
            token_id,
            now_ms,
            key_ttl_ms,
            "" if timeout_ms is None else timeout_ms,
            *_flatten(fields),
        ]
        token, cached = self._scripts["token_create"](keys=keys, args=args)
        return Created(token, bool(int(cached)))

    @_wrapped
    def get_token(self, token_id: str) -> Record | None:
        return self._client.hgetall(self.keys.token(token_id)) or None

    @_wrapped
    def complete_token(
        self, token_id: str, now_ms: int, status: str, field: str, value: str
    ) -> tuple[str, list[str]]:
        reply = self._scripts["token_complete"](
            keys=[
                self.keys.token(token_id),
                self.keys.timers(),
                self.keys.waiters(f"token:{token_id}"),
            ],
            args=[now_ms, status, field, value],
        )
        return reply[0], list(reply[1:])

    @_wrapped
    def list_token_ids(
        self, *, tag: str | None, before: tuple[int, str] | None, count: int
    ) -> list[tuple[str, int]]:
        key = self.keys.token_tag(tag) if tag else self.keys.tokens_by_created()
        return self._page(key, before, count)

    @_wrapped
    def enqueue(self, delivery: BrokerDelivery, *, front: bool = False) -> None:
        """Push a prepared Celery message onto a broker queue on this server (fast path);
        ``front``: where kombu pops next (a promoted run takes up its slot at once)."""
        (self._client.rpush if front else self._client.lpush)(delivery.queue, delivery.envelope)

    @_wrapped
    def remove_timers(self, members: Sequence[str]) -> None:
        if members:
            self._client.zrem(self.keys.timers(), *members)

    # metadata, tags, idempotency keys ----------------------------------------------------
    @_wrapped
    def apply_metadata(
        self, updates: Sequence[MetaUpdate], now_ms: int, *, max_bytes: int
    ) -> list[MetaResult]:
        script = self._scripts["metadata_apply"]

        def call(u: MetaUpdate) -> tuple[list[str], list[Any]]:
            window = "" if u.window_ms is None else u.window_ms
            return [self.keys.run(u.run_id)], [
                now_ms,
                max_bytes,
                window,
                u.operations,
                "1" if u.reply else "0",
            ]

        pipe = self._client.pipeline(transaction=False)
        for u in updates:
            keys, args = call(u)
            ev_keys, spec = event_block(self.keys, u.run_id, self._identities.get(u.run_id))
            script(keys=[*keys, *ev_keys], args=[*args, spec], client=pipe)
        replies = pipe.execute(raise_on_error=False)
        out: list[MetaResult] = []
        for u, reply in zip(updates, replies, strict=True):
            if isinstance(reply, redis.ResponseError) and stale_identity(str(reply)):
                reply = self._evalrun("metadata_apply", u.run_id, *call(u))  # stale event keys
            elif isinstance(reply, Exception):
                raise reply
            out.append(MetaResult(str(reply[0]), str(reply[1] or "")))
        return out

    @_wrapped
    def add_tags(self, run_id: str, tags: Sequence[str], max_tags: int) -> tuple[str, list[str]]:
        status, text = self._evalrun(
            "tags_add",
            run_id,
            [self.keys.run(run_id), *(self.keys.tag(t) for t in tags)],
            [max_tags, *tags],
            extra_tags=tags,
        )
        current = list(json.loads(text or "[]"))
        if status == "ok":
            batch = self._identities.get(run_id).batch
            self._identities.put(run_id, RunIdentity(tuple(current), batch))
        return str(status), current

    @_wrapped
    def idempotency_owner(self, task_id: str, key: str) -> str | None:
        value = self._client.get(self.keys.idempotency(task_id, key))
        return None if value is None else str(value)

    @_wrapped
    def release_idempotency_key(
        self, task_id: str, key: str, owner: str, *, clear_record: bool
    ) -> bool:
        return bool(
            self._scripts["idem_clear"](
                keys=[self.keys.idempotency(task_id, key), self.keys.run(owner)],
                args=[owner, "1" if clear_record else "0"],
            )
        )

    @_wrapped
    def get_batch_key(self, key: str) -> str | None:
        value = self._client.get(self.keys.batch_idempotency(key))
        return None if value is None else str(value)

    @_wrapped
    def claim_batch_key(self, key: str, batch_id: str, ttl_ms: int) -> str:
        name = self.keys.batch_idempotency(key)
        pipe = self._client.pipeline(transaction=True)
        pipe.set(name, batch_id, nx=True, px=ttl_ms)
        pipe.get(name)
        return str(pipe.execute()[1])

    # timers ---------------------------------------------------------------------------
    @_wrapped
    def add_timers(self, timers: Sequence[tuple[str, int]]) -> None:
        if timers:
            self._client.zadd(self.keys.timers(), {m: d for m, d in timers})

    @_wrapped
    def claim_timers(self, now_ms: int, limit: int, lease_ms: int) -> list[str]:
        return list(
            self._scripts["claim_timers"](
                keys=[self.keys.timers(), self.keys.timers_claimed()],
                args=[now_ms, limit, lease_ms],
            )
        )

    @_wrapped
    def ack_timers(self, members: Sequence[str]) -> None:
        if members:
            self._client.zrem(self.keys.timers_claimed(), *members)

    @_wrapped
    def timer_due(self, member: str) -> int | None:
        score = self._client.zscore(self.keys.timers(), member)
        return None if score is None else int(score)

    # batches, queues, task definitions ------------------------------------------------
    @_wrapped
    def put_batch(self, batch_id: str, fields: dict[str, str]) -> None:
        self._client.hset(self.keys.batch(batch_id), mapping=fields)

    @_wrapped
    def get_batch(self, batch_id: str) -> Record | None:
        return self._client.hgetall(self.keys.batch(batch_id)) or None

    @_wrapped
    def put_queue(self, name: str, fields: dict[str, str]) -> None:
        pipe = self._client.pipeline(transaction=True)
        pipe.sadd(self.keys.queues(), name)
        pipe.hset(self.keys.queue(name), mapping=fields)
        pipe.execute()

    @_wrapped
    def get_queue(self, name: str) -> Record | None:
        return self._client.hgetall(self.keys.queue(name)) or None

    @_wrapped
    def put_task_defs(self, defs: dict[str, str]) -> None:
        if defs:
            self._client.hset(self.keys.task_defs(), mapping=defs)

    @_wrapped
    def get_task_def(self, task_id: str) -> str | None:
        value = self._client.hget(self.keys.task_defs(), task_id)
        return None if value is None else str(value)

    @_wrapped
    def pending_runs(self, task_id: str, limit: int) -> list[str]:
        if limit <= 0:  # ZRANGE 0 -1 would mean "everything"
            return []
        return list(self._client.zrange(self.keys.pending_version(task_id), 0, limit - 1))

    # schedules ----------------------------------------------------------------------------
    @_wrapped
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
        args: list[Any] = [
            schedule_id,
            now_ms,
            mode,
            require_type,
            schedule_timer(schedule_id),
            "" if next_run is None else next_run[0],
            "" if next_run is None else next_run[1],
            len(create_fields),
            *_flatten(create_fields),
            *_flatten(fields),
        ]
        reply = self._scripts["schedule_put"](
            keys=[k.schedule(schedule_id), k.schedules(), k.timers(), k.timers_claimed()], args=args
        )
        if reply[0] == "type":
            return "type", {"type": reply[1]}
        return reply[0], (_pairs(reply, 1) if len(reply) > 1 else None)

    @_wrapped
    def get_schedule(self, schedule_id: str) -> Record | None:
        return self._client.hgetall(self.keys.schedule(schedule_id)) or None

    @_wrapped
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

    @_wrapped
    def delete_schedule(self, schedule_id: str, *, require_type: str) -> str:
        k = self.keys
        return str(
            self._scripts["schedule_delete"](
                keys=[k.schedule(schedule_id), k.schedules(), k.timers()],
                args=[schedule_id, require_type, schedule_timer(schedule_id)],
            )
        )

    @_wrapped
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

    # realtime -------------------------------------------------------------------------
    @_wrapped
    def stream_tail(self, feed: Feed) -> str:
        last = self._client.xrevrange(feed_key(self.keys, feed), "+", "-", count=1)
        return str(last[0][0]) if last else "0-0"

    @_wrapped
    def read_stream(self, feed: Feed, after: str, count: int) -> list[tuple[str, dict[str, str]]]:
        if count <= 0:
            return []
        rows = self._client.xrange(feed_key(self.keys, feed), f"({after}", "+", count)
        return [(str(i), dict(f)) for i, f in rows]

    @_wrapped
    def append_stream(
        self, run_id: str, key: str, writer: str, seq: int, chunks: Sequence[str]
    ) -> tuple[str, int]:
        status, added = self._evalrun(
            "stream_append",
            run_id,
            [self.keys.run(run_id), self.keys.run_stream(run_id, key)],
            [key, writer, seq, *chunks],
        )
        return str(status), int(added)

    @_wrapped
    def publish(self, feed: Feed) -> None:
        self._client.publish(feed_key(self.keys, feed), "")

    def listener(self) -> RedisListener:
        return RedisListener(self._client, self.keys)

    @_wrapped
    def mark_token_used(self, token_id: str, ttl_ms: int) -> bool:
        key = self.keys.token_use(token_id)
        return bool(self._client.set(key, "1", nx=True, px=max(1, ttl_ms)))

    # housekeeping -----------------------------------------------------------------------
    @_wrapped
    def ping(self) -> bool:
        return bool(self._client.ping())

    def close(self) -> None:
        self._client.close()

    def location(self) -> ServerLocation | None:
        kw = self._client.connection_pool.connection_kwargs
        if "path" in kw:  # a unix socket: no host to compare with a broker URL
            return None
        ssl = "ssl" in str(self._client.connection_pool.connection_class).lower()
        return ServerLocation(
            host=str(kw.get("host")),
            port=int(kw.get("port") or 6379),
            db=int(kw.get("db") or 0),
            password=kw.get("password") or None,
            ssl=ssl,
        )


class RedisListener:
    """``Listener`` on a Redis pub/sub connection of its own (redis-py ``PubSub``)."""

    def __init__(self, client: Any, keys: Keys) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=False)
        self._keys = keys
        # channel -> feed, from the subscribe call until its unsubscribe is confirmed
        self._feeds: dict[str, Feed] = {}

    @_wrapped
    def subscribe(self, feeds: Sequence[Feed]) -> None:
        if feeds:
            channels = {feed_key(self._keys, feed): feed for feed in feeds}
            self._feeds.update(channels)
            self._pubsub.subscribe(*channels)

    @_wrapped
    def unsubscribe(self, feeds: Sequence[Feed]) -> None:
        if feeds:
            self._pubsub.unsubscribe(*(feed_key(self._keys, feed) for feed in feeds))

    @_wrapped
    def get(self, timeout: float) -> list[tuple[str, Feed]]:
        out: list[tuple[str, Feed]] = []
        message = self._pubsub.get_message(timeout=timeout)
        while message is not None:
            kind, channel = str(message["type"]), str(message["channel"])
            feed = self._feeds.get(channel)
            if feed is not None and kind in ("subscribe", "unsubscribe", "message"):
                out.append((kind, feed))
                if kind == "unsubscribe" and channel not in self._pubsub.channels:
                    del self._feeds[channel]
            message = self._pubsub.get_message(timeout=0)
        return out

    def close(self) -> None:
        try:
            self._pubsub.close()
        except redis.RedisError:  # closing a broken connection: nothing left to release
            pass


# The slot operations (``redis_slots``) turn Redis errors into StoreUnavailableError too.
for _name in OPERATIONS:
    setattr(RedisStore, _name, _wrapped(getattr(RedisSlots, _name)))
