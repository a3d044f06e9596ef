"""The value types of the Store protocols (``protocols/``): what operations take and return.

A record is a flat ``dict[str, str]`` (the Redis hash as stored). No type here names a key:
operations take domain values (run ids, task ids, ``IdempotencyKey``, ``Feed``,
``BrokerDelivery``) and each store maps them to its own keys (``_keys.Keys``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

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
    LOGS = "logs"  # entries ``{d: JSON LogEntry}`` of a run's own log (``LogStore``)
    TIMERS = "timers"  # the timer set got an earliest member due soon (wake-ups only)


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
    def logs(cls, run_id: str) -> Feed:
        return cls(FeedKind.LOGS, run_id)

    @classmethod
    def hub(cls, hub_id: str) -> Feed:
        return cls(FeedKind.HUB, hub_id)

    @classmethod
    def timers(cls) -> Feed:
        return cls(FeedKind.TIMERS, "")


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
    if feed.kind is FeedKind.LOGS:
        return keys.run_logs(feed.target)
    if feed.kind is FeedKind.TIMERS:
        return keys.timers()
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
class NewBatch:
    """A batch record written with its runs (``create_runs(..., batch=)``): ``fields`` are
    stored as given, and ``runs`` is the JSON list of the ids the creates resolved."""

    batch_id: str
    fields: dict[str, str]


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
