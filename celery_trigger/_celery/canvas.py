"""The Celery message options a run keeps from its first message, for every later delivery.

A run sent the Celery way (``.delay``, ``apply_async``, canvas) may be delivered again by
celery-trigger itself: a long retry, a resume after a durable wait, the publish watchdog, a
delayed run coming due. Celery keeps none of the first message's options anywhere, so they
are saved on the run (the record's ``embed`` field, opaque to the engine) and put back on
every delivery celery-trigger publishes:

- canvas: ``callbacks``/``errbacks`` (``link``/``link_error``), ``chain``, ``chord``,
  ``group`` and ``group_index`` (a chord's join counts its members by group), ``root_id``
  and ``parent_id``;
- routing and delivery: ``priority``, the queue the message was sent to, custom headers.

``eta``/``countdown`` and ``expires`` are not kept: they become the run's ``delay`` and
``ttl`` (``_celery/__init__.py``), which the engine enforces.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery.app.task import Context

#: Body embed keys (protocol 2).
_BODY_KEYS = ("callbacks", "errbacks", "chain", "chord")
#: Protocol-2 headers Celery sets itself (``Context._get_custom_headers`` drops the same).
_CELERY_HEADERS = frozenset({*Context.__dict__.keys(), "lang", "task", "argsrepr", "kwargsrepr",
                             "compression"})  # fmt: skip
#: Our own headers, written on each delivery.
_OWN_HEADER_PREFIX = "ct_"


def _custom_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v
        for k, v in headers.items()
        if k not in _CELERY_HEADERS and not str(k).startswith(_OWN_HEADER_PREFIX)
    }


def _clean(options: dict[str, Any]) -> dict[str, Any] | None:
    kept = {k: v for k, v in options.items() if v not in (None, [], {}, "")}
    return kept or None


def from_publish(
    headers: Mapping[str, Any],
    body: Any,
    properties: Mapping[str, Any] | None,
    exchange: Any,
    routing_key: Any,
) -> dict[str, Any] | None:
    """The options of a message being published (``before_task_publish``)."""
    embed = body[2] if isinstance(body, (list, tuple)) and len(body) == 3 else None
    options: dict[str, Any] = {k: (embed or {}).get(k) for k in _BODY_KEYS}
    options["group"] = headers.get("group")
    options["group_index"] = headers.get("group_index")
    options["root_id"] = headers.get("root_id")
    options["parent_id"] = headers.get("parent_id")
    options["priority"] = (properties or {}).get("priority")
    options["headers"] = _custom_headers(headers)
    if not exchange and isinstance(routing_key, str) and routing_key:
        options["queue"] = routing_key  # anonymous exchange: the routing key is the queue
    elif exchange:
        options["exchange"] = getattr(exchange, "name", exchange)
        options["routing_key"] = routing_key
    return _clean(options)


def from_request(request: Any) -> dict[str, Any] | None:
    """The options of a message being executed (a sender that never called ``setup``)."""
    info = request.delivery_info or {}
    options: dict[str, Any] = {k: getattr(request, k, None) for k in _BODY_KEYS}
    options["group"] = request.group
    options["group_index"] = request.group_index
    options["root_id"] = request.root_id if request.root_id != request.id else None
    options["parent_id"] = request.parent_id
    options["priority"] = info.get("priority")
    options["headers"] = _custom_headers(request.headers or {})
    exchange, routing_key = info.get("exchange"), info.get("routing_key")
    if not exchange and routing_key:
        options["queue"] = routing_key
    elif exchange:
        options["exchange"], options["routing_key"] = exchange, routing_key
    return _clean(options)


def send_options(embed: Mapping[str, Any] | None) -> dict[str, Any]:
    """``send_task`` keyword arguments that put the saved options back on a delivery."""
    if not embed:
        return {}
    options: dict[str, Any] = {
        "link": embed.get("callbacks"),
        "link_error": embed.get("errbacks"),
        "chain": embed.get("chain"),
        "chord": embed.get("chord"),
        "group_id": embed.get("group"),
        "group_index": embed.get("group_index"),
    }
    for key in ("root_id", "parent_id", "priority", "queue", "exchange", "routing_key"):
        if embed.get(key) is not None:
            options[key] = embed[key]
    return options


def body_embed(embed: Mapping[str, Any] | None) -> dict[str, Any]:
    """The protocol-2 body embed (``[args, kwargs, embed]``) of a direct message."""
    return {k: (embed or {}).get(k) for k in _BODY_KEYS}
