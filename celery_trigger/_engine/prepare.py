"""Preparing a trigger: resolve and validate every option, serialise the payload and build
the run record. Nothing is written here, so bad input raises before anything exists.

Option precedence for each setting: the trigger's option, then the task's code (the local
definition, else the one a worker stored), then the project config, then the default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .._metadata_ops import check_document
from .._serialization import dumps, loads
from .._store.base import NewRun
from .._vocab import RunStatus, TimerKind
from ..options import (
    Queue,
    clamp_max_duration,
    coerce_queue,
    normalize_tags,
    priority_ms,
    resolve_delay,
    resolve_idempotency_ttl,
    resolve_machine,
    resolve_ttl,
)
from . import idempotency, registry
from .clock import new_run_id, now_ms
from .engine import Engine
from .registry import TaskSpec
from .state import current_state
from .versions import serves_version

TRIGGER_OPTIONS = frozenset(
    {
        "delay",
        "ttl",
        "priority",
        "tags",
        "metadata",
        "queue",
        "concurrency_key",
        "idempotency_key",
        "idempotency_key_ttl",
        "machine",
        "max_attempts",
        "max_duration",
        "version",
        "region",
    }
)
#: The default TTL of runs in the DEVELOPMENT environment (s).
DEV_DEFAULT_TTL_S = 600.0
#: Longest payload text shown as a message's ``argsrepr`` (Flower).
PREVIEW_CHARS = 200


class Prepared:
    """A validated run, ready to create and publish."""

    __slots__ = ("celery_queue", "new", "payload_repr", "status")

    def __init__(
        self, new: NewRun, status: str, celery_queue: str | None, payload_repr: str
    ) -> None:
        self.new = new
        self.status = status
        self.celery_queue = celery_queue
        self.payload_repr = payload_repr


@dataclass(frozen=True)
class _TaskView:
    """What is known of the triggered task: its code here, or what a worker stored."""

    spec: TaskSpec | None
    stored: Mapping[str, Any] | None

    @property
    def known(self) -> bool:
        return self.spec is not None or self.stored is not None

    def get(self, name: str) -> Any:
        """A task-level option from the code, else the stored definition."""
        if self.spec is not None:
            return getattr(self.spec, name)
        return (self.stored or {}).get(name)


def payload_preview(text: str) -> str:
    """The payload as shown in a message's ``argsrepr`` (truncated)."""
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 3] + "..."


def _task_view(engine: Engine, task_id: str) -> _TaskView:
    spec = registry.get(task_id)
    if spec is not None:
        return _TaskView(spec, None)
    stored = engine.stored_task_def(task_id)
    return _TaskView(None, loads(stored) if stored else None)


def _retry_policy(engine: Engine, task: _TaskView) -> Any:
    if task.spec is not None and task.spec.retry is not None:
        return task.spec.retry.to_dict()
    if task.stored is not None and task.stored.get("retry") is not None:
        return task.stored["retry"]
    default = engine.config.retries_default
    return default.to_dict() if default is not None else None


def _payload_json(engine: Engine, task: _TaskView, payload: Any, parse: bool) -> str:
    if parse and task.spec is not None and task.spec.schema is not None:
        parsed = task.spec.parse_payload(payload)
        payload = parsed.model_dump(mode="json") if hasattr(parsed, "model_dump") else parsed
    text = dumps(payload, what="payload")
    size = len(text.encode())
    if size > engine.settings.max_payload_bytes:
        raise ValueError(
            f"payload is {size} bytes, over the {engine.settings.max_payload_bytes}-byte "
            "limit: store large data elsewhere (object storage, a database) and pass a URL "
            "or id instead"
        )
    return text


def _metadata_json(engine: Engine, metadata: Any) -> str:
    if metadata is None:
        return ""
    if not isinstance(metadata, Mapping):
        raise TypeError("metadata must be a dict")
    text = dumps(metadata, what="metadata")
    check_document(loads(text))  # reserved keys, lone surrogates (§8)
    if len(text.encode()) > engine.settings.max_metadata_bytes:
        raise ValueError(
            f"Metadata exceeds maximum size of {engine.settings.max_metadata_bytes} bytes"
        )
    return text


def _run_ttl(engine: Engine, task: _TaskView, options: Mapping[str, Any]) -> float | None:
    if options.get("ttl") is not None:
        return resolve_ttl(options["ttl"])
    if task.get("ttl_given"):
        return task.get("ttl")  # type: ignore[no-any-return]
    if engine.config.ttl is not None:
        return engine.config.ttl
    if engine.settings.environment == "DEVELOPMENT":
        return DEV_DEFAULT_TTL_S
    return None


def _resolve_queue(
    engine: Engine, task_id: str, task: _TaskView, value: Any, known: set[str] | None
) -> tuple[str, bool]:
    """The run's queue name, and whether the run must wait in PENDING_VERSION (TRIG-17)."""
    own = task.spec.queue if task.spec is not None else None
    default = (
        own.name if own is not None else (task.stored or {}).get("queue") or (f"task/{task_id}")
    )
    if value is None:
        return default, False
    queue = coerce_queue(value)
    assert queue is not None
    if isinstance(value, (Queue, Mapping)) and queue.concurrency_limit is not None:
        return queue.name, False  # a dynamic queue: created when the run is written
    if queue.name == default:
        return default, False
    if queue.name in (known if known is not None else known_queue_names()):
        return queue.name, False
    return queue.name, engine.store.get_queue(queue.name) is None


def _celery_queue(task: _TaskView, value: Any, queue_name: str) -> str | None:
    """The Celery queue the run's messages travel on, when its queue names one
    (``ct.queue(..., celery_queue=...)``): the trigger's queue, else a queue of that name the
    code defines, else what a worker stored for the task."""
    if isinstance(value, (Queue, Mapping)):
        given = coerce_queue(value)
        if given is not None and given.celery_queue:
            return given.celery_queue
    for spec in [task.spec, *registry.all_definitions()]:
        if spec is not None and spec.queue is not None and spec.queue.name == queue_name:
            if spec.queue.celery_queue:
                return spec.queue.celery_queue
    stored = task.stored or {}
    if stored.get("queue") == queue_name and stored.get("celery_queue"):
        return str(stored["celery_queue"])
    return None


def known_queue_names() -> set[str]:
    """Queues the code of this process defines."""
    return {d.queue.name for d in registry.all_definitions() if d.queue is not None}


def _dynamic_limit(options: Mapping[str, Any]) -> int | None:
    value = options.get("queue")
    if isinstance(value, (Queue, Mapping)):
        queue = coerce_queue(value)
        if queue is not None:
            return queue.concurrency_limit
    return None


def _concurrency_key(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError("concurrency_key must be a string or an integer")
    return str(value)


def _attempts(retry: Any, max_attempts: Any) -> int:
    if max_attempts is not None and (
        isinstance(max_attempts, bool) or not isinstance(max_attempts, int)
    ):
        raise TypeError("max_attempts must be an integer")
    if max_attempts is not None and max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    if retry is None:
        return 1
    return max(1, max_attempts) if max_attempts is not None else int(retry["max_attempts"])


@dataclass
class _Resolved:
    """Every option of one trigger, resolved and validated."""

    payload_json: str
    meta_json: str
    tags: list[str]
    delay_until: datetime | None
    ttl: float | None
    priority: int
    queue: str
    pending: bool
    ckey: str | None
    machine: str
    attempts: int
    max_duration: Any
    retry: Any
    key: idempotency.IdempotencyKey | None
    key_ttl: float
    labels: dict[str, str]


def _resolve(
    engine: Engine,
    task_id: str,
    task: _TaskView,
    payload: Any,
    options: Mapping[str, Any],
    stamp: int,
    known: set[str] | None,
    parse: bool,
) -> _Resolved:
    payload_json = _payload_json(engine, task, payload, parse)
    tags = normalize_tags(options.get("tags"))
    meta_json = _metadata_json(engine, options.get("metadata"))
    delay_until = resolve_delay(
        options.get("delay"), datetime.fromtimestamp(stamp / 1000, tz=timezone.utc)
    )
    ttl = _run_ttl(engine, task, options)
    priority = priority_ms(options.get("priority"))
    queue, pending = _resolve_queue(engine, task_id, task, options.get("queue"), known)
    ckey = _concurrency_key(options.get("concurrency_key"))
    machine = (
        resolve_machine(options.get("machine")) or task.get("machine") or engine.config.machine
    )
    retry = _retry_policy(engine, task)
    attempts = _attempts(retry, options.get("max_attempts"))
    max_duration = (
        clamp_max_duration(options.get("max_duration"))
        or task.get("max_duration")
        or engine.config.max_duration
    )
    state = current_state()
    key = None
    if options.get("idempotency_key") is not None:
        key = idempotency.for_trigger(
            options["idempotency_key"],
            run_id=state.run_id if state else None,
            attempt=state.attempt if state else None,
        )
    key_ttl = (
        resolve_idempotency_ttl(options.get("idempotency_key_ttl")) or idempotency.DEFAULT_TTL_S
    )
    # A run of an unknown task, or for an unknown queue, waits in its task's pending set; a
    # worker that defines the task releases it once the run's queue is known too (D-18).
    pending = pending or not task.known
    labels = _labels(options)
    if state is not None and "version" not in labels and state.record.get("version"):
        labels["version"] = state.record["version"]  # children keep the parent's version
    # A run pinned to a version waits until a worker serving that version is live (D-21).
    pending = pending or (
        "version" in labels and not serves_version(engine, task_id, labels["version"], stamp)
    )
    return _Resolved(
        payload_json, meta_json, tags, delay_until, ttl, priority, queue, pending, ckey,
        machine, attempts, max_duration, retry, key, key_ttl, labels,
    )  # fmt: skip


def _labels(options: Mapping[str, Any]) -> dict[str, str]:
    """``version`` and ``region`` as stored on the run (D-21): non-empty strings."""
    labels: dict[str, str] = {}
    for name in ("version", "region"):
        value = options.get(name)
        if value is None:
            continue
        if not isinstance(value, str) or not value or len(value) > 128:
            raise TypeError(f"{name} must be a non-empty string of at most 128 characters")
        labels[name] = value
    return labels


def _status(r: _Resolved) -> str:
    status = (
        RunStatus.PENDING_VERSION
        if r.pending
        else RunStatus.DELAYED
        if r.delay_until is not None
        else RunStatus.QUEUED
    )
    return str(status.value)


def _fields(
    rid: str, task_id: str, r: _Resolved, status: str, stamp: int, batch_id: str | None
) -> dict[str, str]:
    fields = {
        "id": rid,
        "task": task_id,
        "status": status,
        "payload": r.payload_json,
        "queue": r.queue,
        "machine": r.machine,
        "priority": str(r.priority),
        "max_attempts": str(r.attempts),
        "retry": dumps(r.retry) if r.retry else "",
        "tags": dumps(r.tags),
        "created": str(stamp),
        "updated": str(stamp),
        "queued_at": str(stamp),
        "attempt": "0",
        "depth": "0",
        "is_test": "0",
        "is_replay": "0",
    }
    if r.ttl is not None:
        fields["ttl"] = repr(r.ttl) if not r.ttl.is_integer() else str(int(r.ttl))
    if r.ckey is not None:
        fields["ckey"] = r.ckey
    if r.max_duration:
        fields["max_duration"] = str(r.max_duration)
    if r.meta_json:
        fields["seed_meta"] = r.meta_json
        fields["meta"] = r.meta_json
    if batch_id:
        fields["batch"] = batch_id
    fields.update(r.labels)
    state = current_state()
    if state is not None:
        fields["parent"] = state.run_id
        fields["root"] = state.root_id
        fields["depth"] = str(state.depth + 1)
        fields["is_test"] = "1" if state.is_test else "0"
    if r.key is not None:
        fields["idem"] = r.key.user_key
        fields["idem_key"] = str(r.key)
        fields["idem_exp"] = str(stamp + int(r.key_ttl * 1000))
    return fields


def _timers(engine: Engine, rid: str, r: _Resolved, status: str, stamp: int,
            fields: dict[str, str]) -> list[tuple[str, int]]:  # fmt: skip
    if r.delay_until is not None and not r.pending:
        due = int(r.delay_until.timestamp() * 1000)
        fields["delay_until"] = str(due)
        return [(TimerKind.ENQUEUE.member(rid), due)]
    if status != RunStatus.QUEUED.value:
        return []
    timers = [(TimerKind.PUBLISH.member(rid), stamp + int(engine.settings.publish_watchdog * 1000))]
    if r.ttl is not None:
        timers.append((TimerKind.TTL.member(rid), stamp + int(r.ttl * 1000)))
    return timers


def prepare(
    engine: Engine,
    task_id: str,
    payload: Any,
    options: Mapping[str, Any],
    *,
    spec: TaskSpec | None = None,
    now: int | None = None,
    run_id: str | None = None,
    batch_id: str | None = None,
    known_queues: set[str] | None = None,
    parse: bool = True,
) -> Prepared:
    """Validate one trigger and build its record. Raises before anything is written.

    Only a trigger through the task object (``spec`` given) validates its payload on the
    client; by id it does not (§2.2): the run side parses again (TASK_INPUT_ERROR).
    """
    if not isinstance(task_id, str) or not task_id:
        raise ValueError("task id must be a non-empty string")
    unknown = set(options) - TRIGGER_OPTIONS
    if unknown:
        raise TypeError(f"unknown trigger option(s): {', '.join(sorted(unknown))}")
    stamp = now if now is not None else now_ms()
    task = _TaskView(spec, None) if spec is not None else _task_view(engine, task_id)
    r = _resolve(engine, task_id, task, payload, options, stamp, known_queues,
                 parse and spec is not None)  # fmt: skip
    rid = run_id or new_run_id()
    status = _status(r)
    fields = _fields(rid, task_id, r, status, stamp, batch_id)
    celery_queue = _celery_queue(task, options.get("queue"), r.queue) or (
        engine.settings.machine_queues.get(r.machine)
    )
    if celery_queue:
        fields["celery_queue"] = celery_queue
    limit = _dynamic_limit(options)
    if limit is not None:
        fields["queue_limit"] = str(limit)
    state = current_state()
    new = NewRun(
        run_id=rid,
        task_id=task_id,
        fields=fields,
        tags=r.tags,
        timers=_timers(engine, rid, r, status, stamp, fields),
        idempotency_key=str(r.key) if r.key is not None else None,
        idempotency_ttl_ms=int(r.key_ttl * 1000),
        parent_id=state.run_id if state is not None else None,
        pending_version=r.pending,
    )
    return Prepared(new, status, celery_queue, payload_preview(r.payload_json))


def task_known(engine: Engine, task_id: str) -> bool:
    """Whether this process's code or a worker's stored definitions know ``task_id``."""
    return _task_view(engine, task_id).known
