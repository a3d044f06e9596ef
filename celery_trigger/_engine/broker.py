"""The broker interface: what the engine needs of the message broker. The Celery layer
implements it (``_celery/broker.py``); the engine never imports Celery.

A ``Delivery`` is one message for a run attempt (``task_id`` = run id). When the broker is
Redis on the store's own server, ``Broker.plan`` returns a ``DirectMessage`` that the store
pushes in the same script as the run record, and ``announce`` fires the publish signal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Delivery:
    """One Celery message for a run attempt (``task_id`` = run id)."""

    run_id: str
    task_id: str
    parent: str | None = None
    root: str | None = None
    celery_queue: str | None = None
    payload_repr: str = ""
    #: what monitors (Flower) show as the message's kwargs: run id, attempt, tags, key
    run_repr: str = "{}"
    retries: int = 0
    #: canvas links of the run's first delivery (callbacks, errbacks, chain, chord)
    embed: Mapping[str, Any] | None = None
    #: plain Celery sends keep their result backend; runs triggered here do not need it
    ignore_result: bool = True
    #: the run's sub-queue when it is not its task's default (header ``ct_slot``)
    slot: str | None = None
    #: the version the run is pinned to (D-21): only workers serving it may take it
    version: str | None = None
    #: the run's priority offset in ms (D-20): the Celery layer maps it to broker priority
    priority: int = 0


@dataclass(frozen=True)
class DirectMessage:
    """A message the store pushes itself, atomically with the run record: ``queue`` is the
    broker's Redis list, ``envelope`` the transport's JSON, ``announce`` what ``Broker.
    announce`` needs to fire the after-publish signal."""

    queue: str
    envelope: str
    announce: Mapping[str, Any]


class Broker(Protocol):
    """What the engine needs of the message broker (the Celery layer implements it)."""

    @property
    def direct(self) -> bool:
        """Whether messages can be pushed by the store (Redis broker on the store's server)."""

    def plan(self, delivery: Delivery) -> DirectMessage | None:
        """The message for the store to push, or None (then ``send`` it)."""

    def announce(self, message: DirectMessage) -> None:
        """A planned message was pushed: fire the after-publish signal."""

    def send(self, delivery: Delivery) -> None:
        """Publish through Celery (``send_task``)."""

    def revoke(self, run_id: str) -> None:
        """Tell workers to drop queued copies of a run's message (best effort)."""
