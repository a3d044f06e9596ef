"""The Celery layer: everything that touches Celery and kombu.

- ``task.py``: ``TriggerTask`` (the base class of every celery-trigger task; hands each
  delivery to the engine; carries the task settings trigger tasks need) and binding task
  definitions to the app;
- ``bootstep.py``: the worker bootstep (settings check, presence, timer service);
- ``broker.py`` and ``direct.py``: the engine's ``Broker`` interface on the app (``send_task``
  or a protocol-2 message the store pushes itself); ``canvas.py``: the message options a run
  keeps for its later deliveries;
- ``install``/``uninstall`` below: wire an engine into its app (signal handlers: a plain
  publish of a trigger task, a delivery of a task the worker does not know, the app's
  configuration being loaded).

The engine below never imports this package; it reaches Celery only through the ``Broker``
it was given.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from celery import signals

from .._engine import registry
from .._engine.dispatch import create_from_message
from .._engine.engine import Engine, current_or_none
from .._engine.presence import refused
from .._engine.registry import TaskSpec
from .bootstep import TriggerBootstep, note_changes
from .broker import CeleryBroker
from .canvas import from_publish
from .task import Parked, ParkReason, TriggerTask, bind
from .versions import VersionQueues, add_worker_option

__all__ = [
    "CeleryBroker",
    "ParkReason",
    "Parked",
    "TriggerBootstep",
    "TriggerTask",
    "install",
    "note_changes",
    "uninstall",
]

logger = logging.getLogger("celery_trigger")

_installed: dict[int, tuple[Callable[[TaskSpec], None], Callable[..., None]]] = {}


def install(engine: Engine, on_configure: Callable[..., None]) -> None:
    """Bind every definition (now and later) to the engine's app, add the bootstep and the
    signal handlers. ``on_configure`` runs whenever Celery loads the app's configuration
    (now, if it already has)."""
    app = engine.app

    def on_register(spec: TaskSpec) -> None:
        bind(engine, spec)

    registry.on_register(on_register)
    _installed[id(engine)] = (on_register, on_configure)
    engine.on_close(lambda: uninstall(engine))
    app.on_after_configure.connect(on_configure, weak=False)
    if app.configured:
        on_configure(sender=app)
    signals.before_task_publish.connect(
        _on_plain_publish, weak=False, dispatch_uid="celery_trigger.plain_publish"
    )
    signals.task_unknown.connect(
        _on_unknown_task, weak=False, dispatch_uid="celery_trigger.unknown_task"
    )
    steps = app.steps["worker"]
    if TriggerBootstep not in steps:
        steps.add(TriggerBootstep)
    if VersionQueues not in app.steps["consumer"]:
        app.steps["consumer"].add(VersionQueues)
    add_worker_option(app)


def uninstall(engine: Engine) -> None:
    hooks = _installed.pop(id(engine), None)
    if hooks is not None:
        registry.remove_listener(hooks[0])
        engine.app.on_after_configure.disconnect(hooks[1])


def _when(value: Any) -> datetime | None:
    """A protocol-2 ``eta``/``expires`` header (ISO 8601) as an aware datetime."""
    if not isinstance(value, str) or not value:
        return None
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:  # Celery with enable_utc=False sends naive local times
        when = when.astimezone()
    return when


def _on_plain_publish(
    sender: Any = None,
    headers: dict[str, Any] | None = None,
    body: Any = None,
    properties: dict[str, Any] | None = None,
    exchange: Any = None,
    routing_key: Any = None,
    **_: Any,
) -> None:
    """A trigger task sent with plain Celery (``.delay``, ``send_task``, canvas): write its
    run record now, so ``runs.retrieve(result.id)`` works as soon as the call returns.

    The message's ETA/countdown, ``expires`` and canvas fields become the run's (see
    ``create_from_message``)."""
    if headers is None or headers.get("ct_run"):
        return
    engine = current_or_none()
    name = headers.get("task") or sender
    if engine is None or not isinstance(name, str) or registry.get(name) is None:
        return
    if not isinstance(body, (list, tuple)) or len(body) != 3 or not headers.get("id"):
        return  # not protocol 2: the worker creates the run when it receives the message
    args, kwargs = body[0] or (), body[1] or {}
    create_from_message(
        engine,
        headers["id"],
        name,
        args,
        kwargs,
        publishing=True,
        eta=_when(headers.get("eta")),
        expires=_when(headers.get("expires")),
        embed=from_publish(headers, body, properties, exchange, routing_key),
    )
    headers["ct_run"] = 1


def _on_unknown_task(
    sender: Any = None, message: Any = None, name: Any = None, id: Any = None, **_: Any
) -> None:
    """This worker received a run of a task it does not know (an older deploy): offer the
    run to a live worker that knows it, or park it in PENDING_VERSION until one starts."""
    engine = current_or_none()
    app = getattr(sender, "app", None)
    if engine is None or app is not engine.app or not isinstance(id, str):
        return
    headers = getattr(message, "headers", None) or {}
    if not headers.get("ct_run") and engine.stored_task_def(str(name)) is None:
        return  # not a celery-trigger task anywhere: plain Celery's behaviour
    try:
        refused(engine, id, str(name))
    except Exception:  # never break the consumer loop; the run's watchdog still fires
        logger.warning("celery-trigger: could not re-offer run %s", id, exc_info=True)
