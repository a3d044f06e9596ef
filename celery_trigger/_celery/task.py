"""The Celery task class of every celery-trigger task, and binding definitions to an app.

- Each task definition becomes a real Celery task named by its id, whose ``__call__`` hands
  the delivery to the engine (``_engine.attempt.execute``).
- An attempt that ends without a final outcome (a long retry, a durable wait) ends the
  Celery task with ``Parked``, a ``celery.exceptions.Retry`` subclass, publishing nothing:
  Flower shows RETRY with the reason and the same task id comes back later.
- A delivery the engine drops (duplicate, final or cancelled run) ends with ``Ignore``.
- A delivery that fails because the store is unreachable is given back to the broker
  (``Reject(requeue=True)``) once the store answers again or a bounded hold passed
  (``_engine/outage.py``): never acknowledged as done, never a hot loop.
- The Celery task settings trigger tasks rely on (``_config.TRIGGER_TASK_SETTINGS``: late
  ack, requeue when the pool process dies, STARTED, JSON) are attributes of ``TriggerTask``,
  never app-wide settings: plain tasks keep Celery's defaults.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from celery.exceptions import Ignore, Reject, Retry

from .._config import TRIGGER_TASK_SETTINGS
from .._engine.attempt import AttemptFailed, DropDelivery, EndAttempt, execute
from .._engine.engine import Engine
from .._engine.outage import STORE_UNAVAILABLE, count, wait_for_store
from .._engine.presence import misrouted
from .._engine.registry import TaskSpec
from ..errors import StoreUnavailableError
from .canvas import from_request
from .versions import consumed_version


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
    ct_definition: TaskSpec | None = None
    ct_engine: Engine | None = None
    # A worker that dies mid-attempt must not lose the message; the run's lease makes a
    # redelivery harmless. Per task, so plain tasks keep Celery's early ack.
    acks_late = TRIGGER_TASK_SETTINGS["task_acks_late"]
    reject_on_worker_lost = TRIGGER_TASK_SETTINGS["task_reject_on_worker_lost"]
    track_started = TRIGGER_TASK_SETTINGS["task_track_started"]
    serializer = TRIGGER_TASK_SETTINGS["task_serializer"]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        engine = self.ct_engine
        request = self.request
        if engine is None or request.id is None or request.called_directly:
            # Calling the Celery task object directly runs the function inline.
            assert self.ct_definition is not None
            return self.ct_definition(args[0] if args else kwargs or None)  # type: ignore[operator]
        pinned = getattr(request, "ct_version", None)
        if pinned is not None and pinned != consumed_version(request.delivery_info):
            misrouted(engine, request.id)  # D-21: a pinned run only runs on its version
            raise Ignore("celery-trigger: run pinned to another version")
        try:
            output = execute(
                engine,
                request.id,
                self.name,
                args,
                kwargs,
                embed=from_request(request),
                slot=getattr(request, "ct_slot", None),
                ours=bool(getattr(request, "ct_run", None)),
            )
        except StoreUnavailableError:
            count(STORE_UNAVAILABLE)
            wait_for_store(engine)
            raise Reject("celery-trigger: store unavailable", requeue=True) from None
        except DropDelivery as exc:
            raise Ignore(str(exc)) from None
        except EndAttempt as exc:
            raise Parked(exc.reason) from None
        except AttemptFailed as exc:
            if not isinstance(exc.__cause__, Exception):
                raise  # an engine failure (timeout, crash, ...): its name says it all
            failed: Exception = exc.__cause__
        else:
            return output
        # The final failure of a user exception: Celery logs it (once, at ERROR) and stores
        # it as that exception, with the user's own traceback, not an internal wrapper.
        # Raised outside the except block so the exception's own chain stays as it was.
        raise failed


def bind(engine: Engine, spec: TaskSpec) -> Any:
    """The Celery task of ``spec`` on the engine's app (created once, rebound after)."""
    app = engine.app
    existing = app.tasks.get(spec.id) if spec.id in app.tasks else None
    if existing is not None and getattr(existing, "ct_definition", None) is not None:
        existing.ct_definition = spec
        existing.ct_engine = engine
        spec.celery_task = existing
        return existing

    def run(*args: Any, **kwargs: Any) -> Any:  # replaced by TriggerTask.__call__
        raise RuntimeError("celery-trigger tasks run through TriggerTask.__call__")

    options: dict[str, Any] = dict(spec.celery_options)
    if spec.queue is not None and spec.queue.celery_queue:
        options["queue"] = spec.queue.celery_queue  # plain sends travel there too
    celery_task = app.task(
        name=spec.id,
        base=TriggerTask,
        shared=False,
        bind=False,
        ct_definition=spec,
        ct_engine=engine,
        **options,
    )(run)
    spec.celery_task = celery_task
    return celery_task
