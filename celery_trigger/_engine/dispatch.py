"""Dispatch: create run records and publish their Celery messages. The only publisher.

Order of a trigger, so that bad input never leaves anything behind:
1. ``prepare.py`` resolves and validates every option and serialises the payload (errors
   raise there);
2. ``create_and_publish`` creates the run record(s) in one store call (idempotency key
   claimed atomically);
3. it publishes one message per new ``QUEUED`` run, ``task_id = run id``.
A crash between 2 and 3 is covered by the publish watchdog timer written in step 2: the
timer service republishes a run still ``QUEUED`` when it fires (a duplicate message is
dropped by the claim).

The engine never calls Celery: it hands a ``Delivery`` to the ``Broker`` (``broker.py``)
the Celery layer provides (``_celery/broker.py``). When the broker is Redis on the store's
own server, the broker plans a ``DirectMessage`` that the store pushes in the same script
as the record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from .._serialization import dumps, loads
from .._store.base import BrokerDelivery, NewBatch
from .._vocab import FAILED_STATUSES, RunStatus, TimerKind
from ..options import Queue, coerce_queue
from . import tracing
from .broker import Delivery, DirectMessage
from .clock import now_ms
from .engine import Engine
from .prepare import Prepared, payload_preview, prepare
from .publish_failure import unpublished
from .registry import TaskSpec
from .slots import join_scope, line_seq, slot_header


def run_preview(fields: Mapping[str, str]) -> str:
    """The run as Flower shows it in the kwargs column (``kwargsrepr``), so its search finds
    runs by id, tag or idempotency key: ``{'run_id': ..., 'attempt': 1, 'tags': [...]}``."""
    shown: dict[str, Any] = {
        "run_id": fields.get("id"),
        "attempt": int(fields.get("attempt") or 0) or 1,
    }
    tags = loads(fields.get("tags")) if fields.get("tags") else None
    if tags:
        shown["tags"] = tags
    if fields.get("idem"):
        shown["idempotency_key"] = fields["idem"]
    return repr(shown)


def delivery_of(record: Mapping[str, str], *, embed: bool = True) -> Delivery:
    """The delivery of a stored run (timer service, resumes, promotions)."""
    return Delivery(
        run_id=record["id"],
        task_id=record["task"],
        parent=record.get("parent") or None,
        root=record.get("root") or None,
        celery_queue=record.get("celery_queue") or None,
        payload_repr=payload_preview(record.get("payload", "")),
        run_repr=run_preview(record),
        retries=int(record.get("attempt") or 0),
        embed=loads(record["embed"]) if embed and record.get("embed") else None,
        ignore_result=record.get("plain") != "1",
        slot=slot_header(record),
        version=record.get("version") or None,
        priority=int(record.get("priority") or 0),
    )


def _delivery_of_prepared(item: Prepared) -> Delivery:
    fields = item.new.fields
    return Delivery(
        run_id=fields["id"],
        task_id=fields["task"],
        parent=fields.get("parent"),
        root=fields.get("root"),
        celery_queue=item.celery_queue,
        payload_repr=item.payload_repr,
        run_repr=run_preview(fields),
        slot=slot_header(fields),
        version=fields.get("version") or None,
        priority=int(fields.get("priority") or 0),
    )


def publish_record(engine: Engine, record: Mapping[str, str], *, front: bool = False) -> None:
    """Publish a stored run, with the canvas links of its first delivery and, for plain
    Celery sends, its result-backend use. ``front``: on the direct path, where the broker
    queue is popped next (a run handed a concurrency slot takes it up at once)."""
    delivery = delivery_of(record)
    broker = engine.broker
    with tracing.restored(record.get(tracing.TRACE_FIELD)):  # the run's own trace
        if broker.direct and delivery.ignore_result:
            message = broker.plan(delivery)
            if message is not None:
                engine.store.enqueue(BrokerDelivery(message.queue, message.envelope), front=front)
                broker.announce(message)
                return
        broker.send(delivery)


def _replace_failed_owner(
    engine: Engine, prepared: Prepared, owner: str
) -> tuple[str, bool] | None:
    """An idempotency key owned by a failed or expired run goes to the new run (§5.2).

    Returns ``(run id, cached)``: the new run, or the run a concurrent trigger replaced the
    owner with first (cached); None when the owner is not failed."""
    record = engine.store.get_run(owner)
    if record is not None and RunStatus(record["status"]) not in FAILED_STATUSES - {
        RunStatus.CANCELED
    }:
        return None
    prepared.new.replace_owner = owner
    created = engine.store.create_runs([prepared.new], now_ms())[0]
    return created.run_id, created.cached


def _join_lines(engine: Engine, prepared: Sequence[Prepared]) -> None:
    """Store dynamic queues' limits; a QUEUED run of a limited queue joins its line (§6)."""
    for index, item in enumerate(prepared):
        limit = item.new.fields.get("queue_limit")
        if limit is not None:
            engine.store.put_queue(item.new.fields["queue"], {"concurrency_limit": limit})
        if item.status == RunStatus.QUEUED.value:
            item.new.join = join_scope(engine, item.new.fields)
            if item.new.join is not None:
                item.new.fields["seq"] = line_seq(item.new.fields, index, len(prepared))


def _plan_direct(engine: Engine, prepared: Sequence[Prepared]) -> list[DirectMessage | None]:
    """Attach the Celery message to each queued run the store can enqueue atomically.

    Record and message are written together, but the publish watchdog stays: a worker
    killed after taking the message and before claiming the run would otherwise leave it in
    the broker's unacked set until the visibility timeout (an hour or more)."""
    broker = engine.broker
    out: list[DirectMessage | None] = []
    for item in prepared:
        message = None
        if broker.direct and item.status == RunStatus.QUEUED.value:
            message = broker.plan(_delivery_of_prepared(item))
        if message is not None:
            item.new.enqueue = BrokerDelivery(message.queue, message.envelope)
        out.append(message)
    return out


def create_and_publish(
    engine: Engine, prepared: Sequence[Prepared], batch: NewBatch | None = None
) -> list[tuple[str, bool]]:
    """Write the runs (and ``batch``'s record with them), then publish the new queued ones.
    Returns ``(run id, cached)``.

    A trigger is a span (``trigger <task>``); each run keeps its context (``tracing.py``)."""
    with tracing.span(*tracing.trigger_span(prepared)) as span:
        for item in prepared:
            item.new.fields.update(tracing.kept_fields(item.new.fields))
        out = _create_and_publish(engine, prepared, batch)
        span.set_attribute("ct.run_ids", [run_id for run_id, _ in out])
        return out


def _create_and_publish(
    engine: Engine, prepared: Sequence[Prepared], batch: NewBatch | None
) -> list[tuple[str, bool]]:
    _join_lines(engine, prepared)
    planned = _plan_direct(engine, prepared)
    created = engine.store.create_runs([p.new for p in prepared], now_ms(), batch=batch)
    out: list[tuple[str, bool]] = []
    to_send: list[Prepared] = []
    for item, result, message in zip(prepared, created, planned, strict=True):
        run_id, cached = result.run_id, result.cached
        if cached and run_id != item.new.run_id:
            replaced = _replace_failed_owner(engine, item, run_id)
            if replaced is not None:
                run_id, cached = replaced
        if not cached and item.status == RunStatus.QUEUED.value:
            if message is not None:
                engine.broker.announce(message)
            else:
                to_send.append(item)
        out.append((run_id, cached))
    for item in to_send:
        try:
            engine.broker.send(_delivery_of_prepared(item))
        except Exception as exc:
            unpublished(engine, [p.new.run_id for p in to_send], exc)
    return out


def create_prepared(engine: Engine, prepared: Prepared) -> tuple[str, bool]:
    """Create and publish one run ``prepare`` validated (a caller may check something else
    between the two, as the HTTP trigger route checks its token)."""
    return create_and_publish(engine, [prepared])[0]


def create_one(
    engine: Engine,
    task_id: str,
    payload: Any,
    options: Mapping[str, Any],
    spec: TaskSpec | None = None,
    run_id: str | None = None,
) -> tuple[str, bool]:
    """Validate, create and publish one run; ``(run id, cached)``."""
    return create_prepared(
        engine, prepare(engine, task_id, payload, options, spec=spec, run_id=run_id)
    )


def create_from_message(
    engine: Engine,
    run_id: str,
    task_id: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    publishing: bool = False,
    eta: datetime | None = None,
    expires: datetime | None = None,
    embed: Mapping[str, Any] | None = None,
) -> None:
    """A plain Celery send (``.delay``, ``send_task``, canvas) of a trigger task: write the
    run record it stands for, with the message's task id as the run id.

    Called when the message is published (``publishing``: the publish watchdog covers a
    publish that then fails) and again, as a fallback, when a worker receives a message
    whose run does not exist (a sender that never called ``setup``).

    The message's options become the run's: an ``eta`` (or countdown) makes it ``DELAYED``
    until then (the publish watchdog and the TTL count from it, as for ``delay=``), an
    ``expires`` is its TTL (it ends ``EXPIRED`` and never runs), and ``embed`` (the Celery
    layer's saved message options: canvas fields, priority, headers) goes on every later
    delivery.
    """
    if len(args) == 1 and not kwargs:
        payload = args[0]
    elif not args:
        payload = dict(kwargs) if kwargs else None
    else:
        payload = list(args)
    stamp = now_ms()
    options: dict[str, Any] = {}
    start = datetime.fromtimestamp(stamp / 1000, tz=timezone.utc)
    if eta is not None and eta > start:
        options["delay"] = start = eta
    if expires is not None:
        # Whole seconds, at least one: the worker discards an expired message (REVOKED)
        # and the TTL timer then expires the run.
        options["ttl"] = max(1, math.ceil((expires - start).total_seconds()))
    prepared = prepare(engine, task_id, payload, options, run_id=run_id, parse=False, now=stamp)
    prepared.new.fields["plain"] = "1"  # later deliveries keep Celery's result backend
    prepared.new.fields.update(tracing.kept_fields({}))  # the sender's trace, if traced
    if embed:
        prepared.new.fields["embed"] = dumps(dict(embed), what="canvas links")
    if not publishing:
        watchdog = TimerKind.PUBLISH.member(run_id)
        prepared.new.timers = [t for t in prepared.new.timers if t[0] != watchdog]
    engine.store.create_runs([prepared.new], stamp)


def enqueue_delayed(engine: Engine, run_id: str, *, only_if_due: bool) -> dict[str, str] | None:
    """DELAYED → QUEUED, arming the publish watchdog and the TTL from now; the new record,
    or None when the run is not DELAYED (or, with ``only_if_due``, not due yet).

    The ``enqueue`` timer calls it (then publishes); so does a delivery that finds its run
    DELAYED and due (a Celery ETA message arriving at the ETA takes the run at once)."""
    record = engine.store.get_run(run_id)
    if record is None or record.get("status") != RunStatus.DELAYED.value:
        return None
    stamp = now_ms()
    if only_if_due and int(record.get("delay_until") or 0) > stamp:
        return None
    add = [(TimerKind.PUBLISH.member(run_id), stamp + int(engine.settings.publish_watchdog * 1000))]
    if record.get("ttl"):
        add.append((TimerKind.TTL.member(run_id), stamp + int(float(record["ttl"]) * 1000)))
    result = engine.store.transition(
        run_id,
        stamp,
        allowed=RunStatus.DELAYED.value,
        status=RunStatus.QUEUED.value,
        add_timers=add,
        remove_timers=[TimerKind.ENQUEUE.member(run_id)] if only_if_due else (),
    )
    return result.record if result.ok else None


def republish_queued(engine: Engine, run_id: str) -> str:
    """The publish watchdog (or a long retry) is due: publish a run still QUEUED again and
    arm the watchdog again, so a QUEUED run always has something due. Returns the run's
    status (QUEUED when it was published)."""
    stamp = now_ms()
    due = stamp + int(engine.settings.publish_watchdog * 1000)
    watchdog = (TimerKind.PUBLISH.member(run_id), due)
    result = engine.store.transition(
        run_id, stamp, allowed=RunStatus.QUEUED.value, add_timers=[watchdog]
    )
    if result.ok and result.record is not None:
        publish_record(engine, result.record)
    return result.status


def dynamic_queue(options: Mapping[str, Any]) -> Queue | None:
    """The queue of a trigger's ``queue=`` option when it defines a limit (created on use)."""
    value = options.get("queue")
    if isinstance(value, (Queue, Mapping)):
        queue = coerce_queue(value)
        if queue is not None and queue.concurrency_limit is not None:
            return queue
    return None
