"""Triggering: validate options, build run records, create them, publish. The only publisher.

Order of a trigger, so that bad input never leaves anything behind:
1. resolve and validate every option and serialise the payload (errors raise here);
2. create the run record(s) in one store call (idempotency key claimed atomically);
3. publish one Celery message per new ``QUEUED`` run, ``task_id = run id``.
A crash between 2 and 3 is covered by the publish watchdog timer written in step 2: the
timer service republishes a run still ``QUEUED`` when it fires (a duplicate message is
dropped by ``claim_attempt``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from . import _definition
from ._engine import concurrency, idempotency
from ._engine.metadata_ops import check_document
from ._engine.state import current_state
from ._serialization import dumps, loads
from ._setup import Trigger, current
from ._store.base import BrokerDelivery, NewRun
from .options import (
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
from .result import RunHandle
from .status import FAILED_STATUSES, RunStatus

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
MAX_BATCH_ITEMS = 1000
DEV_DEFAULT_TTL_S = 600.0


def new_run_id() -> str:
    return f"run_{uuid.uuid4().hex[:24]}"


def new_batch_id() -> str:
    return f"batch_{uuid.uuid4().hex[:24]}"


def now_ms() -> int:
    return int(time.time() * 1000)


def timer(kind: str, run_id: str) -> str:
    """Timer member naming: ``<kind>|<run id>`` (kinds: enqueue, ttl, retry, pub)."""
    return f"{kind}|{run_id}"


class Prepared:
    """A validated run, ready to create and publish."""

    __slots__ = ("celery_queue", "delayed", "new", "payload_repr", "status")

    def __init__(
        self, new: NewRun, status: str, celery_queue: str | None, payload_repr: str
    ) -> None:
        self.new = new
        self.status = status
        self.celery_queue = celery_queue
        self.payload_repr = payload_repr


def _lookup_definition(trigger: Trigger, task_id: str) -> tuple[Any, dict[str, Any] | None]:
    """Local definition, else the one a worker stored; ``(None, None)`` if nobody knows it."""
    defn = _definition.get(task_id)
    if defn is not None:
        return defn, None
    cached = trigger._task_def_cache.get(task_id)
    if cached is None or cached[0] < time.monotonic():
        stored = trigger.store.get_task_def(task_id)
        cached = (time.monotonic() + 5.0, stored)
        trigger._task_def_cache[task_id] = cached
    return None, (loads(cached[1]) if cached[1] else None)


def _retry_policy(trigger: Trigger, defn: Any, stored: dict[str, Any] | None) -> Any:
    if defn is not None and defn.retry is not None:
        return defn.retry.to_dict()
    if stored is not None and stored.get("retry") is not None:
        return stored["retry"]
    default = trigger.config.retries_default
    return default.to_dict() if default is not None else None


def prepare(
    trigger: Trigger,
    task_id: str,
    payload: Any,
    options: Mapping[str, Any],
    *,
    defn: Any = None,
    now: int | None = None,
    run_id: str | None = None,
    batch_id: str | None = None,
    known_queues: set[str] | None = None,
    parse: bool = True,
) -> Prepared:
    """Validate one trigger and build its record. Raises before anything is written."""
    if not isinstance(task_id, str) or not task_id:
        raise ValueError("task id must be a non-empty string")
    unknown = set(options) - TRIGGER_OPTIONS
    if unknown:
        raise TypeError(f"unknown trigger option(s): {', '.join(sorted(unknown))}")
    stamp = now if now is not None else now_ms()
    settings = trigger.settings
    stored: dict[str, Any] | None = None
    # Only a trigger through the task object validates on the client; by id it does not
    # (§2.2): the run side parses again and fails with TASK_INPUT_ERROR.
    parse = parse and defn is not None
    if defn is None:
        defn, stored = _lookup_definition(trigger, task_id)
    if parse and defn.schema is not None:
        parsed = defn.parse_payload(payload)
        payload = parsed.model_dump(mode="json") if hasattr(parsed, "model_dump") else parsed
    payload_json = dumps(payload, what="payload")
    if len(payload_json.encode()) > settings.max_payload_bytes:
        raise ValueError(
            f"payload is {len(payload_json.encode())} bytes, over the "
            f"{settings.max_payload_bytes}-byte limit: store large data elsewhere "
            "(object storage, a database) and pass a URL or id instead"
        )
    tags = normalize_tags(options.get("tags"))
    metadata = options.get("metadata")
    meta_json = ""
    if metadata is not None:
        if not isinstance(metadata, Mapping):
            raise TypeError("metadata must be a dict")
        meta_json = dumps(metadata, what="metadata")
        check_document(loads(meta_json))  # reserved keys, lone surrogates (§8)
        if len(meta_json.encode()) > settings.max_metadata_bytes:
            raise ValueError(
                f"Metadata exceeds maximum size of {settings.max_metadata_bytes} bytes"
            )
    delay_until = resolve_delay(
        options.get("delay"), datetime.fromtimestamp(stamp / 1000, tz=timezone.utc)
    )
    ttl = _resolve_run_ttl(trigger, defn, stored, options)
    prio = priority_ms(options.get("priority"))
    queue, pending = _resolve_queue(
        trigger, task_id, defn, stored, options.get("queue"), known_queues
    )
    ckey = options.get("concurrency_key")
    if ckey is not None:
        if isinstance(ckey, bool) or not isinstance(ckey, (str, int)):
            raise TypeError("concurrency_key must be a string or an integer")
        ckey = str(ckey)
    machine = (
        resolve_machine(options.get("machine"))
        or (defn.machine if defn is not None else (stored or {}).get("machine"))
        or trigger.config.machine
    )
    max_attempts = options.get("max_attempts")
    if max_attempts is not None and (
        isinstance(max_attempts, bool) or not isinstance(max_attempts, int)
    ):
        raise TypeError("max_attempts must be an integer")
    max_duration = (
        clamp_max_duration(options.get("max_duration"))
        or (defn.max_duration if defn is not None else (stored or {}).get("max_duration"))
        or trigger.config.max_duration
    )
    retry = _retry_policy(trigger, defn, stored)
    if retry is None:
        attempts = 1
    else:
        attempts = max(1, max_attempts) if max_attempts is not None else retry["max_attempts"]
    state = current_state()
    key_value = options.get("idempotency_key")
    key = None
    if key_value is not None:
        key = idempotency.for_trigger(
            key_value,
            run_id=state.run_id if state else None,
            attempt=state.attempt if state else None,
        )
    key_ttl = (
        resolve_idempotency_ttl(options.get("idempotency_key_ttl")) or idempotency.DEFAULT_TTL_S
    )
    rid = run_id or new_run_id()
    # A run of an unknown task, or for an unknown queue, waits in its task's pending set; a
    # worker that defines the task releases it once the run's queue is known too (D-18).
    pending = pending or (defn is None and stored is None)
    status = (
        RunStatus.PENDING_VERSION
        if pending
        else RunStatus.DELAYED
        if delay_until is not None
        else RunStatus.QUEUED
    ).value
    fields = {
        "id": rid,
        "task": task_id,
        "status": status,
        "payload": payload_json,
        "queue": queue,
        "machine": machine,
        "priority": str(prio),
        "max_attempts": str(attempts),
        "retry": dumps(retry) if retry else "",
        "tags": dumps(tags),
        "created": str(stamp),
        "updated": str(stamp),
        "queued_at": str(stamp),
        "attempt": "0",
        "depth": "0",
        "is_test": "0",
        "is_replay": "0",
    }
    if ttl is not None:
        fields["ttl"] = repr(ttl) if not ttl.is_integer() else str(int(ttl))
    if ckey is not None:
        fields["ckey"] = ckey
    if max_duration:
        fields["max_duration"] = str(max_duration)
    if meta_json:
        fields["seed_meta"] = meta_json
        fields["meta"] = meta_json
    if batch_id:
        fields["batch"] = batch_id
    if state is not None:
        fields["parent"] = state.run_id
        fields["root"] = state.root_id
        fields["depth"] = str(state.depth + 1)
        fields["is_test"] = "1" if state.is_test else "0"
    if key is not None:
        fields["idem"] = key.user_key
        fields["idem_key"] = str(key)
        fields["idem_exp"] = str(stamp + int(key_ttl * 1000))
    celery_queue = settings.machine_queues.get(machine)
    if celery_queue:
        fields["celery_queue"] = celery_queue
    timers: list[tuple[str, int]] = []
    if delay_until is not None and not pending:
        due = int(delay_until.timestamp() * 1000)
        fields["delay_until"] = str(due)
        timers.append((timer("enqueue", rid), due))
    elif status == RunStatus.QUEUED.value:
        timers.append((timer("pub", rid), stamp + int(settings.publish_watchdog * 1000)))
        if ttl is not None:
            timers.append((timer("ttl", rid), stamp + int(ttl * 1000)))
    new = NewRun(
        run_id=rid,
        task_id=task_id,
        fields=fields,
        tags=tags,
        timers=timers,
        idempotency_key=str(key) if key is not None else None,
        idempotency_ttl_ms=int(key_ttl * 1000),
        parent_id=state.run_id if state is not None else None,
        pending_version=pending,
    )
    text = payload_json if len(payload_json) <= 200 else payload_json[:197] + "..."
    return Prepared(new, status, celery_queue, text)


def _resolve_run_ttl(
    trigger: Trigger, defn: Any, stored: dict[str, Any] | None, options: Mapping[str, Any]
) -> float | None:
    if "ttl" in options and options["ttl"] is not None:
        return resolve_ttl(options["ttl"])
    if defn is not None and defn.ttl_given:
        return defn.ttl  # type: ignore[no-any-return]
    if stored is not None and stored.get("ttl_given"):
        return stored.get("ttl")
    if trigger.config.ttl is not None:
        return trigger.config.ttl
    if trigger.settings.environment == "DEVELOPMENT":
        return DEV_DEFAULT_TTL_S
    return None


def _resolve_queue(
    trigger: Trigger,
    task_id: str,
    defn: Any,
    stored: dict[str, Any] | None,
    value: Any,
    known: set[str] | None,
) -> tuple[str, bool]:
    """The run's queue name, and whether the run must wait in PENDING_VERSION (TRIG-17)."""
    default = (
        defn.queue.name
        if defn is not None and defn.queue is not None
        else (stored or {}).get("queue") or f"task/{task_id}"
    )
    if value is None:
        return default, False
    queue = coerce_queue(value)
    assert queue is not None
    if isinstance(value, (Queue, Mapping)) and queue.concurrency_limit is not None:
        return queue.name, False  # a dynamic queue: created when the run is written
    if queue.name == default:
        return default, False
    if known is None:
        known = known_queue_names(trigger)
    if queue.name in known:
        return queue.name, False
    return queue.name, trigger.store.get_queue(queue.name) is None


def known_queue_names(trigger: Trigger) -> set[str]:
    names = {d.queue.name for d in _definition.all_definitions() if d.queue is not None}
    return names


def _dynamic_queue(options: Mapping[str, Any]) -> Queue | None:
    value = options.get("queue")
    if isinstance(value, (Queue, Mapping)):
        queue = coerce_queue(value)
        if queue is not None and queue.concurrency_limit is not None:
            return queue
    return None


def _replace_failed_owner(
    trigger: Trigger, prepared: Prepared, owner: str
) -> tuple[str, bool] | None:
    """An idempotency key owned by a failed or expired run goes to the new run (§5.2).

    Returns ``(run id, cached)``: the new run, or the run a concurrent trigger replaced the
    owner with first (cached); None when the owner is not failed."""
    record = trigger.store.get_run(owner)
    if record is not None and RunStatus(record["status"]) not in FAILED_STATUSES - {
        RunStatus.CANCELED
    }:
        return None
    prepared.new.replace_owner = owner
    created = trigger.store.create_runs([prepared.new], now_ms())[0]
    return created.run_id, created.cached


def create_and_publish(trigger: Trigger, prepared: list[Prepared]) -> list[tuple[str, bool]]:
    """Write the runs, then publish the new queued ones. Returns ``(run id, cached)``.

    With a Redis broker on the store's server the message is pushed by the creating script
    itself (``_broker.DirectEnqueuer``); otherwise it is sent with ``send_task`` afterwards.
    """
    stamp = now_ms()
    for index, item in enumerate(prepared):
        queue = _dynamic_queue_of(item)
        if queue is not None:
            trigger.store.put_queue(queue.name, {"concurrency_limit": str(queue.concurrency_limit)})
        if item.status == RunStatus.QUEUED.value:  # in line at once on a limited queue (§6)
            item.new.join = concurrency.join_scope(trigger, item.new.fields)
            if item.new.join is not None:
                item.new.fields["seq"] = concurrency.line_seq(item.new.fields, index, len(prepared))
    signals = _plan_direct(trigger, prepared)
    created = trigger.store.create_runs([p.new for p in prepared], stamp)
    out: list[tuple[str, bool]] = []
    to_publish: list[Prepared] = []
    for item, result, signal in zip(prepared, created, signals, strict=True):
        run_id, cached = result.run_id, result.cached
        if cached and run_id != item.new.run_id:
            replaced = _replace_failed_owner(trigger, item, run_id)
            if replaced is not None:
                run_id, cached = replaced
        if not cached and item.status == RunStatus.QUEUED.value:
            if signal is not None:
                trigger.enqueuer.published(signal)
            else:
                to_publish.append(item)
        out.append((run_id, cached))
    publish_prepared(trigger, to_publish)
    return out


def _plan_direct(trigger: Trigger, prepared: list[Prepared]) -> list[dict[str, Any] | None]:
    """Attach the Celery message to each queued run the store can enqueue atomically."""
    enqueuer = trigger.enqueuer
    out: list[dict[str, Any] | None] = []
    for item in prepared:
        plan = None
        if enqueuer.enabled and item.status == RunStatus.QUEUED.value:
            fields = item.new.fields
            plan = enqueuer.plan(
                fields["id"],
                fields["task"],
                parent=fields.get("parent"),
                root=fields.get("root"),
                celery_queue=item.celery_queue,
                payload_repr=item.payload_repr,
                slot=concurrency.slot_header(fields),
            )
        if plan is None:
            out.append(None)
            continue
        list_key, message, signal = plan
        item.new.enqueue = BrokerDelivery(list_key, message)
        # Record and message are written together, but the publish watchdog stays: a worker
        # killed after taking the message and before claiming the run would otherwise leave
        # it in the broker's unacked set until the visibility timeout (an hour or more).
        out.append(signal)
    return out


def _dynamic_queue_of(item: Prepared) -> Queue | None:
    limit = item.new.fields.get("queue_limit")
    if limit is None:
        return None
    return Queue(name=item.new.fields["queue"], concurrency_limit=int(limit))


def publish_prepared(trigger: Trigger, items: list[Prepared]) -> None:
    for item in items:
        fields = item.new.fields
        publish(
            trigger,
            fields["id"],
            fields["task"],
            parent=fields.get("parent"),
            root=fields.get("root"),
            celery_queue=item.celery_queue,
            payload_repr=item.payload_repr,
            retries=0,
            slot=concurrency.slot_header(fields),
        )


def publish(
    trigger: Trigger,
    run_id: str,
    task_id: str,
    *,
    parent: str | None,
    root: str | None,
    celery_queue: str | None,
    payload_repr: str,
    retries: int,
    embed: Mapping[str, Any] | None = None,
    ignore_result: bool = True,
    slot: str | None = None,
) -> None:
    """Send the one Celery message for a run attempt (``task_id`` = run id); ``slot`` names
    the run's sub-queue when it is not its task's default (header ``ct_slot``)."""
    options: dict[str, Any] = {
        "task_id": run_id,
        "args": (),
        "kwargs": {},
        "argsrepr": payload_repr,
        "kwargsrepr": "{}",
        "headers": {"ct_run": 1, "ct_slot": slot} if slot else {"ct_run": 1},
        "add_to_parent": False,
        "retries": retries,
        # The run record holds the outcome: no result-backend subscription at publish time,
        # no backend write in the worker (plain Celery sends keep their results).
        "ignore_result": ignore_result,
    }
    if embed:
        options["link"] = embed.get("callbacks")
        options["link_error"] = embed.get("errbacks")
        options["chain"] = embed.get("chain")
        options["chord"] = embed.get("chord")
    if parent:
        options["parent_id"] = parent
        options["root_id"] = root or parent
    if celery_queue:
        options["queue"] = celery_queue
    trigger.app.send_task(task_id, **options)


def publish_record(trigger: Trigger, record: Mapping[str, str], *, front: bool = False) -> None:
    """Publish a stored run (timer service, resumes, pending promotions), with the canvas
    links of its first delivery and, for plain Celery sends, its result-backend use.
    ``front``: on the direct-enqueue path, where the broker queue is popped next (a run
    handed a concurrency slot takes it up at once)."""
    payload = record.get("payload", "")
    text = payload if len(payload) <= 200 else payload[:197] + "..."
    embed = loads(record["embed"]) if record.get("embed") else None
    plain = record.get("plain") == "1"
    common: dict[str, Any] = {
        "parent": record.get("parent") or None,
        "root": record.get("root") or None,
        "celery_queue": record.get("celery_queue") or None,
        "payload_repr": text,
        "retries": int(record.get("attempt") or 0),
        "slot": concurrency.slot_header(record),
    }
    enqueuer = trigger.enqueuer
    if enqueuer.enabled and not plain:
        plan = enqueuer.plan(record["id"], record["task"], embed=embed, **common)
        if plan is not None:
            trigger.store.enqueue(BrokerDelivery(plan[0], plan[1]), front=front)
            enqueuer.published(plan[2])
            return
    publish(trigger, record["id"], record["task"], embed=embed, ignore_result=not plain, **common)


# public entry points ------------------------------------------------------------------
def _create_one(
    engine: Trigger,
    task_id: str,
    payload: Any,
    options: Mapping[str, Any],
    definition: Any,
    run_id: str | None = None,
) -> tuple[str, bool]:
    prepared = prepare(engine, task_id, payload, options, defn=definition, run_id=run_id)
    return create_prepared(engine, prepared, options)


def create_prepared(
    engine: Trigger, prepared: Prepared, options: Mapping[str, Any]
) -> tuple[str, bool]:
    """Create and publish one run ``prepare`` validated (a caller may check something else
    between the two, as the HTTP trigger route checks its token)."""
    queue = _dynamic_queue(options)
    if queue is not None:
        prepared.new.fields["queue_limit"] = str(queue.concurrency_limit)
    return create_and_publish(engine, [prepared])[0]


def trigger(
    task_id: str, payload: Any, options: Mapping[str, Any], *, definition: Any = None
) -> RunHandle:
    """Create one run and publish it. Validation errors raise before anything is written.

    Inside a run the trigger is journaled and the child id is derived from the parent's
    position, so replaying the parent never triggers the child twice.
    """
    from . import _durable
    from .auth import run_handle_token

    engine = current()
    if current_state() is not None:
        handle = _durable.trigger_in_run(
            task_id, lambda rid: _create_one(engine, task_id, payload, options, definition, rid)
        )
        run_id, cached = handle.id, handle.is_cached
    else:
        run_id, cached = _create_one(engine, task_id, payload, options, definition)
    return RunHandle(
        id=run_id,
        is_cached=cached,
        task_identifier=task_id,
        token_factory=lambda: run_handle_token(engine, run_id),
    )


def trigger_and_wait(
    task_id: str, payload: Any, options: Mapping[str, Any], *, definition: Any = None
) -> Any:
    """Trigger a child run and park until it is final; returns its ``Result``."""
    from . import _durable

    if current_state() is None:
        raise RuntimeError("trigger_and_wait can only be used from inside a task run")
    engine = current()
    return _durable.trigger_and_wait(
        task_id, lambda rid: _create_one(engine, task_id, payload, options, definition, rid)
    )


def create_from_message(
    trigger: Trigger,
    run_id: str,
    task_id: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    publishing: bool = False,
) -> None:
    """A plain Celery send (``.delay``, ``send_task``, canvas) of a trigger task: write the
    run record it stands for, with the message's task id as the run id.

    Called when the message is published (``publishing``: the publish watchdog covers a
    publish that then fails) and again, as a fallback, when a worker receives a message
    whose run does not exist (a sender that never called ``setup``).
    """
    if len(args) == 1 and not kwargs:
        payload = args[0]
    elif not args:
        payload = dict(kwargs) if kwargs else None
    else:
        payload = list(args)
    prepared = prepare(trigger, task_id, payload, {}, run_id=run_id, parse=False)
    prepared.new.fields["plain"] = "1"  # later deliveries keep Celery's result backend
    if not publishing:
        prepared.new.timers = [t for t in prepared.new.timers if not t[0].startswith("pub|")]
    trigger.store.create_runs([prepared.new], now_ms())
