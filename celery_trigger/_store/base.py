"""The Store protocol: every operation the engine performs on run state.

A record is a flat ``dict[str, str]`` (the Redis hash as stored). Each operation is atomic:
``RedisStore`` runs it as one Lua script (or one pipeline of them), ``MemoryStore`` under
one lock. Both must pass ``tests/store/test_contract.py``.

Invariants every implementation keeps:
- a run record is created once; an idempotency key names at most one owner run;
- ``claim_attempt`` gives at most one live lease per run; a final status never changes;
- ``finish_attempt`` writes only while the caller still holds the lease;
- a timer member is handed to one claimer at a time and comes back if its claim lapses;
- a run executes under a queue limit only while it holds one of the queue's slots, taken in
  the same atomic step as the claim; no (sub-)queue ever has more live slots than its limit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, Sequence

from .._keys import Keys
from .._vocab import TimerKind

Record = dict[str, str]


def schedule_timer(schedule_id: str) -> str:
    """The timer member of a schedule's next occurrence (one per schedule)."""
    return TimerKind.SCHEDULE.member(schedule_id)


@dataclass(frozen=True)
class BrokerDelivery:
    """A prepared Celery message for the broker queue ``queue`` (the name the Redis transport
    gives the queue's list, global key prefix included) on the store's own server."""

    queue: str
    envelope: str


@dataclass(frozen=True)
class IdempotencyKey:
    """A run idempotency key, scoped to its task (SEMANTICS §5)."""

    task_id: str
    key: str


@dataclass(frozen=True)
class ServerLocation:
    """Where a store keeps its data (``Store.location``): compared with the broker's, to
    know whether the direct-enqueue path applies (``_broker.py``)."""

    host: str
    port: int
    db: int
    password: str | None
    ssl: bool


class FeedKind(str, Enum):
    """What a ``Feed`` follows."""

    RUN = "run"  # a run's change events (a channel: no history, ``stream_tail`` "0-0")
    TAG = "tag"  # change events ``{r: run id, k: kind}`` of every run carrying a tag
    BATCH = "batch"  # change events ``{r: run id, k: kind}`` of a batch's runs
    STREAM = "stream"  # chunks ``{d: JSON}`` of one realtime stream of a run
    HUB = "hub"  # a process's realtime hub (wake-ups only)


@dataclass(frozen=True, order=True)
class Feed:
    """A change feed of the realtime layer (DESIGN §7): what a listener subscribes to and
    what ``read_stream`` reads, named by domain values (the store maps it to its keys).
    Example: ``Feed.tag("user_1")``, ``Feed.stream(run_id, "openai")``."""

    kind: FeedKind
    target: str
    name: str = ""  # the stream key of a STREAM feed

    @classmethod
    def run(cls, run_id: str) -> Feed:
        return cls(FeedKind.RUN, run_id)

    @classmethod
    def tag(cls, tag: str) -> Feed:
        return cls(FeedKind.TAG, tag)

    @classmethod
    def batch(cls, batch_id: str) -> Feed:
        return cls(FeedKind.BATCH, batch_id)

    @classmethod
    def stream(cls, run_id: str, key: str) -> Feed:
        return cls(FeedKind.STREAM, run_id, key)

    @classmethod
    def hub(cls, hub_id: str) -> Feed:
        return cls(FeedKind.HUB, hub_id)


def feed_key(keys: Keys, feed: Feed) -> str:
    """The key (stream or channel name) of a feed in either store."""
    if feed.kind is FeedKind.RUN:
        return keys.events(feed.target)
    if feed.kind is FeedKind.TAG:
        return keys.tag_events(feed.target)
    if feed.kind is FeedKind.BATCH:
        return keys.batch_events(feed.target)
    if feed.kind is FeedKind.STREAM:
        return keys.run_stream(feed.target, feed.name)
    return keys.hub(feed.target)


@dataclass
class NewRun:
    """Everything ``create_runs`` writes for one run."""

    run_id: str
    task_id: str
    fields: dict[str, str]
    tags: list[str] = field(default_factory=list)
    timers: list[tuple[str, int]] = field(default_factory=list)
    idempotency_key: str | None = None
    idempotency_ttl_ms: int = 0
    replace_owner: str | None = None
    parent_id: str | None = None
    pending_version: bool = False
    #: the run's Celery message, pushed atomically with the record (Redis broker on the
    #: store's own server only; other stores ignore it and the caller publishes instead).
    enqueue: BrokerDelivery | None = None
    #: the run's queue when it is known to have a limit: a new QUEUED run takes its place in
    #: line at creation (``slot_join``), so runs start in order whatever the delivery order.
    join: SlotScope | None = None


@dataclass(frozen=True)
class Created:
    run_id: str
    cached: bool


@dataclass(frozen=True)
class Claim:
    """Outcome of ``claim_attempt``: ``action`` is ``ok``, ``drop`` or ``missing``."""

    action: str
    reason: str = ""
    record: Record | None = None


@dataclass(frozen=True)
class SlotScope:
    """The (sub-)queue whose concurrency slot a run takes (DESIGN §6).

    ``queue`` ("" = none: no slot work) and ``ckey`` name the sub-queue; ``env_limit`` is the
    environment-wide limit (``trigger_concurrency_limit``, None = unlimited). For a claim they
    are a hint: a run recorded in another (sub-)queue is claimed with that queue's keys.
    """

    queue: str = ""
    ckey: str = ""
    env_limit: int | None = None


@dataclass(frozen=True)
class Transition:
    ok: bool
    status: str
    record: Record | None = None


@dataclass(frozen=True)
class MetaUpdate:
    """One ``apply_metadata`` target: operations (a JSON list) for one run's document."""

    run_id: str
    operations: str
    #: refuse when the run finished longer ago than this (ms); None = no check
    window_ms: int | None = None
    #: reply with the stored document
    reply: bool = False


@dataclass(frozen=True)
class MetaResult:
    """``status``: ``ok``, ``missing``, ``closed``, ``too_large`` or ``invalid``."""

    status: str
    document: str = ""


class Listener(Protocol):
    """Change notifications for one reader (``Store.listener``); one thread uses it."""

    def subscribe(self, feeds: Sequence[Feed]) -> None:
        """Ask for ``feeds``; each is confirmed by a ``("subscribe", feed)`` item."""
        ...

    def unsubscribe(self, feeds: Sequence[Feed]) -> None:
        """Stop ``feeds``; each is confirmed by an ``("unsubscribe", feed)`` item (a
        message published before the confirmation may still arrive)."""
        ...

    def get(self, timeout: float) -> list[tuple[str, Feed]]:
        """Wait up to ``timeout`` seconds for items, then return every one available:
        ``("subscribe", feed)`` and ``("unsubscribe", feed)`` confirmations and
        ``("message", feed)`` notifications, in arrival order ([] on timeout)."""
        ...

    def close(self) -> None: ...


class Store(Protocol):
    """Atomic operations on runs, timers, queues, task definitions and durable waits."""

    # runs -----------------------------------------------------------------------------
    def create_runs(self, runs: Sequence[NewRun], now_ms: int) -> list[Created]: ...

    def get_run(self, run_id: str) -> Record | None: ...

    def get_runs(self, run_ids: Sequence[str]) -> list[Record | None]: ...

    def children(self, run_id: str) -> list[str]: ...

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
        """Take the run for an attempt (and a slot of its queue when that queue is limited).

        Over the limit: ``Claim("drop", "queued")``, the run waits in its sub-queue.
        """
        ...

    def renew_leases(
        self, leases: Sequence[tuple[str, str]], now_ms: int, lease_ms: int
    ) -> list[str]:
        """Extend each lease still held (and the run's slot); return the run ids whose lease
        was lost, or whose slot lapsed and was reaped."""
        ...

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
        """Write the attempt's outcome while ``token`` holds the lease: 0 (lease lost), 1, or
        2 (final, runs are parked on it). ``release_key``: drop ``idempotency_key`` if the
        run still owns it."""
        ...

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
        """Move a run not executing from an ``allowed`` status (comma separated, ``*`` = any
        non-final) to ``status``; ``pending_task``: the run leaves that task's
        pending-version set."""
        ...

    def list_run_ids(
        self, *, index: str | None, before: tuple[int, str] | None, count: int
    ) -> list[tuple[str, int]]: ...

    def delete_idempotency_key(self, task_id: str, key: str) -> bool: ...

    # durable execution (DESIGN §4) ---------------------------------------------------------
    def journal(self, run_id: str) -> list[str]:
        """The current attempt's journal: one JSON entry per durable operation, in order."""
        ...

    def journal_append(self, run_id: str, token: str, k: int, entry: str) -> int:
        """Append entry ``k`` if the journal has exactly k entries; -1 without the lease."""
        ...

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
        """End the attempt at wait ``k``: ``parked``, ``ready`` (nothing to wait) or ``lost``."""
        ...

    def waiters(self, member: str) -> list[str]:
        """The ``<run>|<k>`` tags of runs parked on a run id or ``token:<id>``."""
        ...

    def notify(self, waiter: str, member: str, now_ms: int, safety_ms: int) -> bool:
        """``member`` resolved: True when it was the waiter's last one and this woke it."""
        ...

    def wake(self, run_id: str) -> Record | None:
        """Mark a WAITING run woken (resumable) and return it; None for any other status."""
        ...

    def wait_key(self, key: str, due_ms: int, ttl_ms: int | None) -> int:
        """The wake-up time first stored under a wait idempotency key (``SET NX``)."""
        ...

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
        """Create a waitpoint token, or return the live owner of its idempotency key."""
        ...

    def get_token(self, token_id: str) -> Record | None:
        """The token record, or None."""
        ...

    def complete_token(
        self, token_id: str, now_ms: int, status: str, field: str, value: str
    ) -> tuple[str, list[str]]:
        """First completion wins: (``ok``, waiters) | (``done``, []) | (``missing``, [])."""
        ...

    def list_token_ids(
        self, *, tag: str | None, before: tuple[int, str] | None, count: int
    ) -> list[tuple[str, int]]:
        """Newest-first ``(token id, created ms)`` page strictly after the cursor."""
        ...

    # metadata, tags, idempotency keys (SEMANTICS §5, §8, §9) ----------------------------
    def apply_metadata(
        self, updates: Sequence[MetaUpdate], now_ms: int, *, max_bytes: int
    ) -> list[MetaResult]:
        """Apply each update to its run's ``meta`` document atomically (one script each)."""
        ...

    def add_tags(self, run_id: str, tags: Sequence[str], max_tags: int) -> tuple[str, list[str]]:
        """Add the tags missing from the run, all or none: (``ok``|``limit``|``missing``, tags)."""
        ...

    def idempotency_owner(self, task_id: str, key: str) -> str | None:
        """The run that owns an idempotency key of a task, or None."""
        ...

    def release_idempotency_key(
        self, task_id: str, key: str, owner: str, *, clear_record: bool
    ) -> bool:
        """Delete the key if ``owner`` still owns it (and clear it from the owner's record)."""
        ...

    def get_batch_key(self, key: str) -> str | None:
        """The batch created under a batch idempotency key, or None."""
        ...

    def claim_batch_key(self, key: str, batch_id: str, ttl_ms: int) -> str:
        """``SET NX`` the batch key; return the batch that owns it afterwards."""
        ...

    # concurrency slots (DESIGN §6) ---------------------------------------------------------
    def release_slot(
        self, run_id: str | None, scope: SlotScope, now_ms: int, handoff_ms: int, delay_ms: int
    ) -> list[str]:
        """Give back the run's slot or place in line (unless it is EXECUTING again), then
        admit waiting runs; returns the promoted run ids (each holds a slot for
        ``handoff_ms`` and has ``promote|<run>`` due after ``delay_ms``)."""
        ...

    def reap_slots(self, now_ms: int) -> int:
        """Drop slots whose lease lapsed (``pump|<sub>`` for each); re-arm ``reap|slots``."""
        ...

    def queue_usage(self, name: str, now_ms: int) -> tuple[int, int]:
        """``(running, queued)`` of a queue: runs holding its slots, runs waiting for one."""
        ...

    def queue_subqueues(self, name: str) -> list[str]:
        """Ids of the queue's sub-queues that have waiting runs."""
        ...

    def queue_names(self) -> list[str]:
        """Every queue ``put_queue`` has stored."""
        ...

    # timers ---------------------------------------------------------------------------
    def add_timers(self, timers: Sequence[tuple[str, int]]) -> None: ...

    def claim_timers(self, now_ms: int, limit: int, lease_ms: int) -> list[str]: ...

    def ack_timers(self, members: Sequence[str]) -> None: ...

    def timer_due(self, member: str) -> int | None: ...

    def remove_timers(self, members: Sequence[str]) -> None:
        """Drop timer members that are no longer needed (not claimed ones)."""
        ...

    # batches, queues, task definitions ------------------------------------------------
    def put_batch(self, batch_id: str, fields: dict[str, str]) -> None: ...

    def get_batch(self, batch_id: str) -> Record | None: ...

    def put_queue(self, name: str, fields: dict[str, str]) -> None: ...

    def get_queue(self, name: str) -> Record | None: ...

    def put_task_defs(self, defs: dict[str, str]) -> None: ...

    def get_task_def(self, task_id: str) -> str | None: ...

    def pending_runs(self, task_id: str, limit: int) -> list[str]: ...

    # schedules (DESIGN §8) ------------------------------------------------------------------
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
        """Create (``mode="upsert"``) or change a schedule and arm its ``sched|<id>`` timer.

        ``create_fields`` are written only when the schedule is new; an empty value in
        ``fields`` deletes that field. ``next_run`` is ``(nominal ms, wall due ms)``, applied
        when the schedule is new or its cron or timezone changed. Returns
        ``("created"|"updated", record)``, ``("missing", None)`` (``mode="update"``) or
        ``("type", {"type": existing})`` when ``require_type`` does not match.
        """
        ...

    def get_schedule(self, schedule_id: str) -> Record | None: ...

    def list_schedules(self, offset: int, count: int) -> tuple[list[Record], int]:
        """Schedules in creation order from ``offset``, and how many exist in all."""
        ...

    def delete_schedule(self, schedule_id: str, *, require_type: str) -> str:
        """Remove a schedule and its pending timer: ``ok``, ``missing`` or ``type``."""
        ...

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
        """Compare-and-set ``next_run`` from ``expected_ms`` to ``next_ms``, record
        ``last_run`` when the occurrence was triggered, arm the timer at ``due_ms``."""
        ...

    # realtime (DESIGN §7) -----------------------------------------------------------------
    # Stream ids are Redis stream ids ("<ms>-<seq>", "0-0" before the first entry); both
    # stores order them the same way. Every state-changing operation above emits its event
    # (``lua/events.lua``) in the same atomic step: it increments the run's field "ev",
    # publishes on ``Feed.run(run)``, and appends to (and publishes on) ``Feed.tag(tag)`` for
    # each of the run's tags and ``Feed.batch(batch)``.
    def stream_tail(self, feed: Feed) -> str:
        """The id of the stream's last entry ("0-0" when it is empty or missing)."""
        ...

    def read_stream(self, feed: Feed, after: str, count: int) -> list[tuple[str, dict[str, str]]]:
        """Up to ``count`` entries strictly after id ``after``, oldest first."""
        ...

    def append_stream(
        self, run_id: str, key: str, writer: str, seq: int, chunks: Sequence[str]
    ) -> tuple[str, int]:
        """``stream_append.lua``: returns ("ok", chunks appended) or ("missing", 0)."""
        ...

    def publish(self, feed: Feed) -> None:
        """Publish an empty message on ``feed`` (wakes a ``listener`` subscribed to it)."""
        ...

    def listener(self) -> Listener:
        """A new subscriber to change notifications. Every stream append of the realtime
        layer is published on its feed; a listener receives those of the feeds it
        subscribed to, from the moment the subscription is
        confirmed. Used by one thread (the hub's)."""
        ...

    def mark_token_used(self, token_id: str, ttl_ms: int) -> bool:
        """Mark a single-use public token (its ``jti``) used for ``ttl_ms``: True the first
        time, False after."""
        ...

    # housekeeping -----------------------------------------------------------------------
    def ping(self) -> bool: ...

    def close(self) -> None: ...

    def location(self) -> ServerLocation | None:
        """The Redis server the store uses, None when it is not on one (or a unix socket)."""
        ...

    def enqueue(self, delivery: BrokerDelivery, *, front: bool = False) -> None:
        """Push a Celery message onto a broker queue on this store's server (only when
        ``location`` matches the broker's); ``front``: the queue's next message."""
        ...
