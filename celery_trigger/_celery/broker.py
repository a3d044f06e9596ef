"""``CeleryBroker``: the engine's ``Broker`` interface (``_engine/broker.py``) on a Celery
app. Messages go out through ``send_task`` or, when the broker is Redis on the store's own
server, are planned here and pushed by the store in the same script as the record
(``direct.py``).

Every message of a run has ``task_id`` = run id and the header ``ct_run`` (so the
plain-publish hook leaves it alone); ``ct_slot`` names the run's sub-queue when it is not its
task's default.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

import celery._state as celery_state

from .._engine.broker import Delivery, DirectMessage
from .._store.base import Store
from .canvas import send_options
from .direct import DirectEnqueuer
from .priority import broker_priority
from .versions import version_queue

logger = logging.getLogger("celery_trigger")
#: Celery's thread-local "current app" holder (``celery._state``; not in the type stubs).
_CELERY_TLS: Any = vars(celery_state)["_tls"]


class CeleryBroker:
    """Publishes run deliveries on one Celery app."""

    def __init__(self, app: Any, store: Callable[[], Store]) -> None:
        self.app = app
        # a getter: the engine opens its store on first use, after this broker exists
        self._store = store
        self._direct: DirectEnqueuer | None = None
        self._redis: bool | None = None

    @property
    def _on_redis(self) -> bool:
        """Whether the broker is Redis (lower message priority is sooner there)."""
        if self._redis is None:
            conn = self.app.connection_for_write()
            try:
                self._redis = conn.transport.driver_type == "redis"
            finally:
                conn.release()
        return self._redis

    @property
    def _enqueuer(self) -> DirectEnqueuer:
        # Built on first use: it asks the broker connection where it points.
        if self._direct is None:
            self._direct = DirectEnqueuer(self.app, self._store())
        return self._direct

    @property
    def direct(self) -> bool:
        return self._enqueuer.enabled

    def plan(self, delivery: Delivery) -> DirectMessage | None:
        return self._enqueuer.plan(delivery)

    def announce(self, message: DirectMessage) -> None:
        self._enqueuer.announce(message)

    def send(self, delivery: Delivery) -> None:
        headers: dict[str, Any] = dict((delivery.embed or {}).get("headers") or {})
        headers["ct_run"] = 1
        if delivery.slot:
            headers["ct_slot"] = delivery.slot
        options: dict[str, Any] = {
            "task_id": delivery.run_id,
            "args": (),
            "kwargs": {},
            "argsrepr": delivery.payload_repr,
            "kwargsrepr": delivery.run_repr,
            "headers": headers,
            "add_to_parent": False,
            "retries": delivery.retries,
            # The run record holds the outcome: no result-backend subscription at publish
            # time, no backend write in the worker (plain Celery sends keep their results).
            "ignore_result": delivery.ignore_result,
        }
        if delivery.parent:
            options["parent_id"] = delivery.parent
            options["root_id"] = delivery.root or delivery.parent
        if delivery.celery_queue:
            options["queue"] = delivery.celery_queue
        # the first message's canvas fields, lineage, priority and queue (canvas.py)
        options.update(send_options(delivery.embed))
        if "priority" not in options and delivery.priority > 0:  # D-20
            priority = broker_priority(self.app, delivery.priority, self._on_redis)
            if priority is not None:
                options["priority"] = priority
        if delivery.version:  # D-21: only workers serving the version consume this queue
            headers["ct_version"] = delivery.version
            options["queue"] = self._versioned(delivery.task_id, options)(delivery.version)
            options.pop("exchange", None)
            options.pop("routing_key", None)
        with _current(self.app):
            self.app.send_task(delivery.task_id, **options)

    def _versioned(self, task_id: str, options: dict[str, Any]) -> Any:
        """The versioned queue maker for the queue the message would use unversioned."""
        given = {k: options[k] for k in ("queue", "exchange", "routing_key") if k in options}
        route = self.app.amqp.router.route(given, task_id, (), {}, None)
        base = route.get("queue") or route.get("routing_key") or self.app.conf.task_default_queue
        return lambda version: version_queue(base, version)

    def revoke(self, run_id: str) -> None:
        try:
            self.app.control.revoke(run_id)
            # No worker announces a run that is not executing (parked, delayed): say it
            # here, so monitors (Flower) show the cancelled run REVOKED.
            with self.app.events.default_dispatcher() as dispatcher:
                dispatcher.send(
                    "task-revoked", uuid=run_id, terminated=False, signum=None, expired=False
                )
        except Exception:  # no broker connection: the run record already says CANCELED
            logger.debug("celery-trigger: revoke of %s not broadcast", run_id, exc_info=True)


@contextlib.contextmanager
def _current(app: Any) -> Iterator[None]:
    """Make ``app`` Celery's current app in this thread while it publishes (restored after).

    Publish-signal receivers look the task up in the *current* app (OpenTelemetry's Celery
    instrumentation does: with another app current it starts no publish span and injects no
    trace context). A run's message can be published from any thread (the timer service, a
    child's worker thread waking its parent), whose current app may be another one."""
    previous = getattr(_CELERY_TLS, "current_app", None)
    app.set_current()
    try:
        yield
    finally:
        _CELERY_TLS.current_app = previous
