"""The Celery integration: task base class, worker bootstep, signals. The only module that
touches Celery internals.

- Each task definition becomes a real Celery task named by its id, whose ``__call__`` hands
  the delivery to the engine (``_engine.lifecycle.execute``).
- An attempt that ends without a final outcome (a long retry, later a durable wait) ends the
  Celery task with ``Parked``, a ``celery.exceptions.Retry`` subclass, publishing nothing:
  Flower shows RETRY with the reason and the same task id comes back later.
- A delivery the engine drops (duplicate, final or cancelled run) ends with ``Ignore``.
- A worker bootstep starts the timer service thread, stores the worker's task definitions
  (so other processes can trigger by id) and promotes runs waiting in PENDING_VERSION.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task, bootsteps, signals
from celery.exceptions import Ignore, Retry

from . import _definition
from ._serialization import dumps
from ._setup import Trigger

logger = logging.getLogger("celery_trigger")


class ParkReason(Exception):
    """Why a run's Celery task ended in RETRY without a new message (shown by Flower)."""


class Parked(Retry):
    """Ends an attempt that continues later; the timer service or a waker republishes it."""

    def __init__(
        self, message: str | None = None, exc: Any = None, when: Any = None, **kwargs: Any
    ) -> None:
        # Same signature as Retry: the prefork pool pickles it via Retry.__reduce__.
        super().__init__(
            message=message,
            exc=exc if exc is not None else ParkReason(message),
            when=when,
            **kwargs,
        )

    def humanize(self) -> str:
        return f"parked: {self.message}"


class TriggerTask(Task):  # type: ignore[type-arg]
    """Base class of every celery-trigger Celery task."""

    typing = False
    ct_definition: Any = None
    ct_engine: Trigger | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ._engine.lifecycle import DropDelivery, EndAttempt, execute

        engine = self.ct_engine
        request = self.request
        if engine is None or request.id is None or request.called_directly:
            # Calling the Celery task object directly runs the function inline.
            return self.ct_definition(args[0] if args else kwargs or None)
        embed = {
            "callbacks": request.callbacks,
            "errbacks": request.errbacks,
            "chain": request.chain,
            "chord": request.chord,
        }
        try:
            return execute(
                engine,
                request.id,
                self.name,
                args,
                kwargs,
                embed=embed if any(embed.values()) else None,
                slot=getattr(request, "ct_slot", None),
            )
        except DropDelivery as exc:
            raise Ignore(str(exc)) from None
        except EndAttempt as exc:
            raise Parked(exc.reason) from None


def _celery_task_for(engine: Trigger, defn: Any) -> Any:
    app = engine.app
    existing = app.tasks.get(defn.id) if defn.id in app.tasks else None
    if existing is not None and getattr(existing, "ct_definition", None) is not None:
        existing.ct_definition = defn
        existing.ct_engine = engine
        defn.celery_task = existing
        return existing

    def run(*args: Any, **kwargs: Any) -> Any:  # replaced by TriggerTask.__call__
        raise RuntimeError("celery-trigger tasks run through TriggerTask.__call__")

    celery_task = app.task(
        name=defn.id,
        base=TriggerTask,
        shared=False,
        bind=False,
        ct_definition=defn,
        ct_engine=engine,
    )(run)
    defn.celery_task = celery_task
    return celery_task


class TriggerBootstep(bootsteps.StartStopStep):
    """Worker blueprint step: timer service, task definition sync, pending promotion."""

    requires = ("celery.worker.components:Pool",)

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.service: Any = None

    def start(self, worker: Any) -> None:
        from ._setup import current_or_none

        engine = current_or_none()
        if engine is None or engine.app is not worker.app:
            return
        engine.discover()
        sync_definitions(engine)
        if engine.settings.timer_service:
            from ._engine.timers import TimerService

            self.service = TimerService(engine)
            self.service.start()

    def stop(self, worker: Any) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def terminate(self, worker: Any) -> None:
        self.stop(worker)

    def shutdown(self, worker: Any) -> None:
        self.stop(worker)


def sync_definitions(engine: Trigger) -> None:
    """Store this worker's definitions and queues; release runs that waited for them;
    write its declarative schedules (SEMANTICS §10.1)."""
    from ._engine import concurrency
    from ._engine.schedules import is_scheduled, sync_declarative
    from ._trigger import now_ms, publish_record

    defs: dict[str, str] = {}
    for defn in _definition.all_definitions():
        defs[defn.id] = dumps(
            {
                "queue": defn.queue.name if defn.queue else None,
                "retry": defn.retry.to_dict() if defn.retry else None,
                "machine": defn.machine,
                "max_duration": defn.max_duration,
                "ttl": defn.ttl,
                "ttl_given": defn.ttl_given,
                "scheduled": is_scheduled(defn.id),
            }
        )
        if defn.queue is not None:
            # a changed limit admits the runs that now fit (DESIGN §6)
            concurrency.define_queue(engine, defn.queue.name, defn.queue.concurrency_limit)
    engine.store.put_task_defs(defs)
    sync_declarative(engine)
    known_queues = {d.queue.name for d in _definition.all_definitions() if d.queue is not None}
    for task_id in defs:
        for run_id in engine.store.pending_runs(task_id, 1000):
            record = engine.store.get_run(run_id)
            queue = (record or {}).get("queue", "")
            if (
                queue
                and queue != f"task/{task_id}"
                and queue not in known_queues
                and engine.store.get_queue(queue) is None
            ):
                continue  # still waiting for a worker that defines its queue
            # A run triggered before any worker knew its task got the default queue: it
            # belongs in the queue its task's code names (with that queue's limit, §6).
            code = _definition.get(task_id)
            own = code.queue.name if code is not None and code.queue is not None else queue
            result = engine.store.transition(
                run_id,
                now_ms(),
                allowed="PENDING_VERSION",
                status="QUEUED",
                pending_task=task_id,
                fields={"queue": own} if queue == f"task/{task_id}" and own != queue else None,
            )
            if result.ok and result.record is not None:
                publish_record(engine, result.record)


_installed: dict[int, Any] = {}


def install(engine: Trigger) -> None:
    """Bind every definition (now and later) to the app and add the worker bootstep."""
    app = engine.app

    def bind(defn: Any) -> None:
        _celery_task_for(engine, defn)

    _definition.on_register(bind)
    _installed[id(engine)] = bind
    signals.before_task_publish.connect(
        _on_plain_publish, weak=False, dispatch_uid="celery_trigger.plain_publish"
    )
    steps = app.steps["worker"]
    if TriggerBootstep not in steps:
        steps.add(TriggerBootstep)


def _on_plain_publish(
    sender: Any = None, headers: dict[str, Any] | None = None, body: Any = None, **_: Any
) -> None:
    """A trigger task sent with plain Celery (``.delay``, ``send_task``, canvas): write its
    run record now, so ``runs.retrieve(result.id)`` works as soon as the call returns."""
    from ._setup import current_or_none
    from ._trigger import create_from_message

    if headers is None or headers.get("ct_run"):
        return
    engine = current_or_none()
    name = headers.get("task") or sender
    if engine is None or not isinstance(name, str) or _definition.get(name) is None:
        return
    if not isinstance(body, (list, tuple)) or len(body) != 3 or not headers.get("id"):
        return  # not protocol 2: the worker creates the run when it receives the message
    args, kwargs = body[0] or (), body[1] or {}
    create_from_message(engine, headers["id"], name, args, kwargs, publishing=True)
    headers["ct_run"] = 1


def uninstall(engine: Trigger) -> None:
    bind = _installed.pop(id(engine), None)
    if bind is not None:
        _definition.remove_listener(bind)


def revoke(engine: Trigger, run_id: str) -> None:
    """Tell workers to drop queued copies of a run's message (best effort)."""
    try:
        engine.app.control.revoke(run_id)
    except Exception:  # no broker connection: the run record already says CANCELED
        logger.debug("celery-trigger: revoke of %s not broadcast", run_id, exc_info=True)
