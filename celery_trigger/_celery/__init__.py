"""The Celery layer: everything that touches Celery and kombu.

- ``task.py``: ``TriggerTask`` (the base class of every celery-trigger task; hands each
  delivery to the engine) and binding task definitions to the app;
- ``bootstep.py``: the worker bootstep (definition sync, timer service);
- ``broker.py`` and ``direct.py``: the engine's ``Broker`` interface on the app (``send_task``
  or a protocol-2 message the store pushes itself);
- ``install``/``uninstall`` below: wire an engine into its app.

The engine below never imports this package; it reaches Celery only through the ``Broker``
it was given.
"""

from __future__ import annotations

from typing import Any

from celery import signals

from .._engine import registry
from .._engine.dispatch import create_from_message
from .._engine.engine import Engine, current_or_none
from .._engine.registry import TaskSpec
from .bootstep import TriggerBootstep
from .broker import CeleryBroker
from .task import Parked, ParkReason, TriggerTask, bind

__all__ = [
    "CeleryBroker",
    "ParkReason",
    "Parked",
    "TriggerBootstep",
    "TriggerTask",
    "install",
    "uninstall",
]

_installed: dict[int, Any] = {}


def install(engine: Engine) -> None:
    """Bind every definition (now and later) to the engine's app and add the bootstep."""
    app = engine.app

    def on_register(spec: TaskSpec) -> None:
        bind(engine, spec)

    registry.on_register(on_register)
    _installed[id(engine)] = on_register
    engine.on_close(lambda: uninstall(engine))
    signals.before_task_publish.connect(
        _on_plain_publish, weak=False, dispatch_uid="celery_trigger.plain_publish"
    )
    steps = app.steps["worker"]
    if TriggerBootstep not in steps:
        steps.add(TriggerBootstep)


def uninstall(engine: Engine) -> None:
    listener = _installed.pop(id(engine), None)
    if listener is not None:
        registry.remove_listener(listener)


def _on_plain_publish(
    sender: Any = None, headers: dict[str, Any] | None = None, body: Any = None, **_: Any
) -> None:
    """A trigger task sent with plain Celery (``.delay``, ``send_task``, canvas): write its
    run record now, so ``runs.retrieve(result.id)`` works as soon as the call returns."""
    if headers is None or headers.get("ct_run"):
        return
    engine = current_or_none()
    name = headers.get("task") or sender
    if engine is None or not isinstance(name, str) or registry.get(name) is None:
        return
    if not isinstance(body, (list, tuple)) or len(body) != 3 or not headers.get("id"):
        return  # not protocol 2: the worker creates the run when it receives the message
    args, kwargs = body[0] or (), body[1] or {}
    create_from_message(engine, headers["id"], name, args, kwargs, publishing=True)
    headers["ct_run"] = 1
