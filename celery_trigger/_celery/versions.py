"""Version routing on Celery (D-21, ``_engine/versions.py``).

- A run pinned to a version travels on ``<queue>@<version>``, a direct queue next to the
  queue it would use otherwise (same queue arguments: priorities, HA ...), with the header
  ``ct_version``.
- A worker serving a version (the worker option ``trigger_version``, else the setting
  ``trigger_worker_version``) also consumes ``<queue>@<version>`` for every queue it
  consumes (``VersionQueues``, a consumer step). The versioned queues are never added to
  ``app.amqp.queues``: another worker of the same app (an in-process test worker, a worker
  without ``-Q``) does not start consuming them.
- ``TriggerTask`` compares a delivery's ``ct_version`` with the version of the queue it
  came in on (``consumed_version``), before anything is claimed.
"""

from __future__ import annotations

from typing import Any

import click
from celery import bootsteps
from kombu import Exchange, Queue

from .._engine.engine import current_or_none
from .._engine.versions import versioned

#: The version each running worker of this process serves, by worker hostname.
_WORKERS: dict[str, str | None] = {}
_QUEUES: dict[tuple[str, str], Queue] = {}


def version_queue(base: Queue | str, version: str) -> Queue:
    """The versioned queue of ``base`` (the same object for the same names). A base that is
    already versioned (a run's saved options name the queue its first message came in on)
    counts as its unversioned queue."""
    name = base.name if isinstance(base, Queue) else str(base)
    suffix = versioned("", version)
    if name.endswith(suffix):
        name = base = name[: -len(suffix)]
    key = (name, version)
    if key not in _QUEUES:
        vname = versioned(name, version)
        arguments = base.queue_arguments if isinstance(base, Queue) else None
        _QUEUES[key] = Queue(
            vname,
            Exchange(vname, type="direct"),
            routing_key=vname,
            queue_arguments=arguments,
            max_priority=getattr(base, "max_priority", None),
        )
    return _QUEUES[key]


def worker_version(worker: Any) -> str | None:
    """The version a worker (WorkController) serves: its ``trigger_version`` option, else
    the ``trigger_worker_version`` setting."""
    options = getattr(worker, "options", None) or {}
    if options.get("trigger_version"):
        return str(options["trigger_version"])
    engine = current_or_none()
    return engine.settings.worker_version if engine is not None else None


def add_worker_option(app: Any) -> None:
    """``celery worker --trigger-version 20250208.1``: the version this worker serves."""
    options = app.user_options["worker"]
    if not any("--trigger-version" in getattr(o, "opts", ()) for o in options):
        options.add(
            click.Option(
                ["--trigger-version"],
                default=None,
                help="celery-trigger: the version this worker serves (D-21); "
                "default: the trigger_worker_version setting",
            )
        )


def register(hostname: str, version: str | None) -> None:
    _WORKERS[hostname] = version


def unregister(hostname: str) -> None:
    _WORKERS.pop(hostname, None)


def consumed_version(delivery_info: Any) -> str | None:
    """The version of the versioned queue a message came in on (None: another queue).

    Only a worker serving a version consumes its versioned queues, so this is the version of
    the worker executing it (a worker's hostname is not: Celery keeps one per process)."""
    routing_key = (delivery_info or {}).get("routing_key")
    for (_, version), queue in list(_QUEUES.items()):
        if queue.name == routing_key:
            return version
    return None


def served_by(hostname: str | None) -> str | None:
    """The version the worker named ``hostname`` serves (None: none, or unknown)."""
    return _WORKERS.get(hostname or "")


class VersionQueues(bootsteps.StartStopStep):
    """Consumer step: a worker serving a version consumes its versioned queues too."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, c: Any) -> None:
        version = served_by(c.hostname)
        consumer = getattr(c, "task_consumer", None)
        if not version or consumer is None:
            return
        added = False
        own = {q.name for q in _QUEUES.values()}
        for queue in list(consumer.queues):
            if queue.name in own:
                continue
            vqueue = version_queue(queue, version)
            if not consumer.consuming_from(vqueue.name):
                consumer.add_queue(vqueue)
                added = True
        if added:
            consumer.consume()
