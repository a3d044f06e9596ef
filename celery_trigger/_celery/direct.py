"""Direct enqueue: Celery messages written by the run-creation script itself.

When the broker is Redis on the same server and database as the run store, a run's Celery
message is built here (the exact protocol-2 message and kombu Redis envelope that
``send_task`` would produce) and pushed by ``create_run.lua`` in the same script that writes
the run record. The record and its message then appear together or not at all, and a trigger
costs one round trip instead of two. ``before_task_publish``/``after_task_publish`` still
fire, so OpenTelemetry's header injection and user signal handlers keep working. Both fire
in one copied ``contextvars`` context kept with the message: OpenTelemetry's producer span is
made current in ``before`` and ended in ``after``; planning several messages before
announcing them (a batch), or a message never announced (an idempotency hit), then leaves
the caller's current span as it was.

Anything this module does not fully understand (another broker, another server, a routed
queue that is not a plain direct queue, a priority saved from a Celery send) makes ``plan``
return ``None``, and ``CeleryBroker`` publishes through ``send_task`` as usual. A run's own
``priority`` (D-20, ``priority.py``) picks the priority sub-list kombu reads.
"""

from __future__ import annotations

import base64
import contextvars
import json
import uuid
from typing import Any

from celery import signals

from .._engine.broker import Delivery, DirectMessage
from .._store.base import Store
from .canvas import body_embed
from .priority import broker_priority, redis_sublist

_EMBED = body_embed(None)
#: Saved message options only ``send_task`` applies (broker priority, another route).
_SEND_TASK_ONLY = ("priority", "queue", "exchange", "routing_key")


def _encode_body(embed: dict[str, Any]) -> str:
    body = json.dumps([[], {}, embed], separators=(", ", ": "))
    return base64.b64encode(body.encode()).decode()


#: The body of every message without canvas links is the same: encode it once.
_PLAIN_BODY = _encode_body(_EMBED)


class DirectEnqueuer:
    """Builds messages for one app; ``enabled`` says whether the fast path applies."""

    def __init__(self, app: Any, store: Store) -> None:
        self.app = app
        self.enabled = _same_redis(app, store)
        self._routes: dict[tuple[str, str | None], str | None] = {}
        conf = app.conf
        options = conf.get("broker_transport_options") or {}
        self._prefix = options.get("global_keyprefix") or ""
        self._delivery_mode = conf.get("task_default_delivery_mode") or 2
        if self._delivery_mode == "persistent":
            self._delivery_mode = 2

    def _queue_key(self, task_name: str, celery_queue: str | None) -> str | None:
        key = (task_name, celery_queue)
        if key not in self._routes:
            self._routes[key] = self._resolve(task_name, celery_queue)
        return self._routes[key]

    def _resolve(self, task_name: str, celery_queue: str | None) -> str | None:
        options = {"queue": celery_queue} if celery_queue else {}
        route = self.app.amqp.router.route(options, task_name, (), {}, None)
        queue = route.get("queue")
        if (
            queue is None
            or route.get("exchange")
            or route.get("routing_key")
            or route.get("priority") is not None
        ):
            return None
        exchange_type = getattr(getattr(queue, "exchange", None), "type", "direct")
        if exchange_type != "direct" or getattr(queue, "max_priority", None):
            return None
        return f"{self._prefix}{queue.name}"

    def plan(self, delivery: Delivery) -> DirectMessage | None:
        """The message for one run attempt as the store should push it, or None."""
        if not self.enabled:
            return None
        embed = delivery.embed or {}
        if delivery.version or any(embed.get(key) is not None for key in _SEND_TASK_ONLY):
            return None
        list_key = self._queue_key(delivery.task_id, delivery.celery_queue)
        if list_key is None:
            return None
        message = self.app.amqp.as_task_v2(
            delivery.run_id,
            delivery.task_id,
            (),
            {},
            retries=delivery.retries,
            root_id=embed.get("root_id") or delivery.root or delivery.parent or None,
            parent_id=embed.get("parent_id") or delivery.parent or None,
            group_id=embed.get("group"),
            group_index=embed.get("group_index"),
            ignore_result=True,
            argsrepr=delivery.payload_repr,
            kwargsrepr=delivery.run_repr,
        )
        headers = message.headers
        headers.update(embed.get("headers") or {})
        headers["ct_run"] = 1
        if delivery.slot:
            headers["ct_slot"] = delivery.slot  # the run's sub-queue, for the claim (DESIGN §6)
        properties = dict(message.properties)
        routing_key = list_key[len(self._prefix) :]
        # D-20: a run's priority (else the app's default) picks kombu's priority sub-list
        priority = broker_priority(self.app, delivery.priority, True)
        if priority is None and self.app.conf.get("task_default_priority") is not None:
            priority = int(self.app.conf.task_default_priority)
        if priority:
            list_key = redis_sublist(self.app, list_key, priority)
        signal_kwargs = {
            "sender": delivery.task_id,
            "body": message.body,
            "exchange": "",
            "routing_key": routing_key,
            "headers": headers,
            "properties": properties,
            "declare": [],
            "retry_policy": {},
        }
        context = contextvars.copy_context()
        if signals.before_task_publish.receivers:
            context.run(signals.before_task_publish.send, **signal_kwargs)
        envelope = {
            "body": _encode_body(body_embed(embed)) if delivery.embed else _PLAIN_BODY,
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": headers,
            "properties": {
                **properties,
                "delivery_mode": self._delivery_mode,
                "delivery_info": {"exchange": "", "routing_key": routing_key},
                "priority": priority or 0,
                "body_encoding": "base64",
                "delivery_tag": str(uuid.uuid4()),
            },
        }
        announce = {**signal_kwargs, "context": context}
        return DirectMessage(list_key, json.dumps(envelope), announce)

    @staticmethod
    def announce(message: DirectMessage) -> None:
        """Fire ``after_task_publish`` for a message the store pushed."""
        if signals.after_task_publish.receivers:
            kw = message.announce
            kw["context"].run(
                signals.after_task_publish.send,
                sender=kw["sender"],
                body=kw["body"],
                exchange="",
                routing_key=kw["routing_key"],
                headers=kw["headers"],
                properties=kw["properties"],
            )


def _same_redis(app: Any, store: Store) -> bool:
    """True when the broker is Redis on exactly the store's server and database."""
    where = store.location()
    if where is None:
        return False
    try:
        conn = app.connection_for_write()
        try:
            if conn.transport.driver_type != "redis":
                return False
            info = conn.info()
        finally:
            conn.release()
    except Exception:
        return False
    if info.get("transport") not in ("redis", "rediss"):
        return False
    if (info.get("transport") == "rediss") != where.ssl:
        return False
    db = info.get("virtual_host") or 0
    try:
        db = int(str(db).lstrip("/") or 0)
    except ValueError:
        return False
    return (
        str(info.get("hostname")),
        int(info.get("port") or 6379),
        db,
        info.get("password") or None,
    ) == (where.host, where.port, where.db, where.password)
