"""Run priority as broker message priority (D-20): ``priority`` works on unlimited queues too.

A run's ``priority`` (seconds, higher starts sooner; SEMANTICS §3.2) becomes a level 1-9 on a
log scale (1 s → 1, 2 s → 2, 4 s → 3, ... 256 s and more → 9): coarse, but it keeps the order.
Limited queues order their waiting line by the exact value (DESIGN §6); the broker priority
only decides which admitted message a worker takes first.

The level is added to the app's default message priority in the broker's direction:

- AMQP (RabbitMQ): higher is sooner; the queue needs the ``x-max-priority`` argument (Celery's
  ``task_queue_max_priority``, or ``Queue(..., max_priority=10)``); the message priority is
  ``task_default_priority`` (0 when unset) + level, at most that maximum (or 9).
- Redis: lower is sooner, and kombu keeps one list per step of ``priority_steps``
  (``broker_transport_options``, default ``[0, 3, 6, 9]``); the message priority is
  ``task_default_priority`` - level, at least 0. With Celery's default (unset: 0) nothing
  can go ahead of the default: set ``task_default_priority`` (e.g. 9) to make room, the way
  Celery documents Redis priorities.
"""

from __future__ import annotations

import math
from typing import Any

#: kombu's Redis defaults (``kombu.transport.redis``): priority steps and the separator of a
#: priority sub-list's name.
REDIS_STEPS = (0, 3, 6, 9)
REDIS_SEP = "\x06\x16"


def level(priority_ms: int) -> int:
    """The broker level (0: none, 1-9) of a run's priority offset in ms."""
    if priority_ms <= 0:
        return 0
    seconds = max(1, priority_ms // 1000)
    return min(9, 1 + int(math.log2(seconds)))


def broker_priority(app: Any, priority_ms: int, redis: bool) -> int | None:
    """The message priority of a run (None: leave the app's default alone)."""
    step = level(priority_ms)
    if not step:
        return None
    default = app.conf.get("task_default_priority")
    base = int(default) if default is not None else 0
    if redis:
        return max(0, base - step)
    top = app.conf.get("task_queue_max_priority")
    return min(int(top) if top is not None else 9, base + step)


def redis_sublist(app: Any, list_key: str, priority: int) -> str:
    """The Redis list kombu reads for ``priority`` on the queue ``list_key`` (its
    ``_q_for_pri``): the plain list for the first step, else ``<list><sep><step>``."""
    options = app.conf.get("broker_transport_options") or {}
    steps = sorted(options.get("priority_steps") or REDIS_STEPS)
    sep = options.get("sep", REDIS_SEP)
    chosen = steps[0]
    for candidate in steps:
        if candidate <= priority:
            chosen = candidate
    return f"{list_key}{sep}{chosen}" if chosen else list_key
