"""Worker presence: which tasks live workers serve, and runs no live worker can take.

- Each worker runs one ``Presence`` thread: at start it stores its definitions
  (``sync.sync_definitions``: live for ``LIVE_FOR_S``), then every ``HEARTBEAT_S`` renews
  their liveness and releases its tasks' PENDING_VERSION runs. A store that is down at worker
  start does not stop the worker (plain tasks keep running): the first sync is retried in
  the background, with a warning, until the store answers.
- A delivery a worker refuses because it does not know the task (Celery's ``task_unknown``,
  e.g. an old worker during a rolling deploy) goes through ``refused``: when a live worker
  serves the task the run is published again shortly (another worker may take it), else it
  becomes PENDING_VERSION with its ``pub`` timer as a re-check (``recheck_pending``), so it is
  published as soon as a worker serving the task is live.

Invariant: a QUEUED or refused PENDING_VERSION run always has its ``pub`` timer due at some
point; nothing here leaves a run with nothing due.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection

from .._serialization import loads
from .._vocab import FINAL_STATUSES, RunStatus, TimerKind
from .clock import now_ms
from .dispatch import publish_record
from .engine import Engine
from .sync import (
    HEARTBEAT_S,
    LIVE_FOR_S,
    release_pending,
    served_specs,
    sync_definitions,
    task_defs,
)
from .versions import live_defs, waits_for_version

logger = logging.getLogger("celery_trigger")

#: A run refused by one worker while another live worker serves its task is published again
#: after this (s), so the broker may hand it to the other worker.
REOFFER_DELAY_S = 1.0
#: How often a refused PENDING_VERSION run checks for a live worker serving its task (s).
PENDING_RECHECK_S = 2.0
#: Pause between two attempts to reach a store that is down (s).
STORE_RETRY_S = 1.0


def serves_live(engine: Engine, task_id: str, stamp: int) -> bool:
    """Whether a live worker serves ``task_id`` (its stored liveness has not lapsed)."""
    text = engine.store.get_task_def(task_id)
    return bool(text) and int(loads(text).get("live_until") or 0) > stamp


def refused(engine: Engine, run_id: str, task_id: str) -> str | None:
    """A worker refused a delivery of ``run_id`` (it does not know ``task_id``).

    Returns what was done: ``"reoffer"`` (published again shortly), ``"pending"``
    (PENDING_VERSION until a worker serving the task is live) or None (the run is not QUEUED:
    a duplicate, or a run whose own timers move it)."""
    stamp = now_ms()
    pub = TimerKind.PUBLISH.member(run_id)
    if serves_live(engine, task_id, stamp):
        due = stamp + int(REOFFER_DELAY_S * 1000)
        result = engine.store.transition(
            run_id, stamp, allowed=RunStatus.QUEUED.value, add_timers=[(pub, due)]
        )
        return "reoffer" if result.ok else None
    result = engine.store.transition(
        run_id,
        stamp,
        allowed=RunStatus.QUEUED.value,
        status=RunStatus.PENDING_VERSION.value,
        add_timers=[(pub, stamp + int(PENDING_RECHECK_S * 1000))],
    )
    if not result.ok:
        return None
    logger.warning(
        "celery-trigger: no live worker serves task %r; run %s is PENDING_VERSION until one starts",
        task_id,
        run_id,
    )
    return "pending"


def recheck_pending(engine: Engine, run_id: str) -> None:
    """The ``pub`` timer of a PENDING_VERSION run: publish it once a live worker serves its
    task, else check again later."""
    record = engine.store.get_run(run_id)
    if record is None or record.get("status") != RunStatus.PENDING_VERSION.value:
        return
    stamp = now_ms()
    pub = TimerKind.PUBLISH.member(run_id)
    task_id = record["task"]
    if not serves_live(engine, task_id, stamp) or waits_for_version(engine, task_id, record, stamp):
        engine.store.add_timers([(pub, stamp + int(PENDING_RECHECK_S * 1000))])
        return
    watchdog = stamp + int(engine.settings.publish_watchdog * 1000)
    result = engine.store.transition(
        run_id,
        stamp,
        allowed=RunStatus.PENDING_VERSION.value,
        status=RunStatus.QUEUED.value,
        add_timers=[(pub, watchdog)],
        pending_task=task_id,
    )
    if result.ok and result.record is not None:
        publish_record(engine, result.record)


def misrouted(engine: Engine, run_id: str) -> bool:
    """A worker of another version received a pinned run's message (D-21): publish the run
    again, routed to its version's queue, instead of claiming it. False when nothing was sent
    (the run is gone, final, or PENDING_VERSION: its ``pub`` timer publishes it)."""
    record = engine.store.get_run(run_id)
    if record is None or RunStatus(record["status"]) in FINAL_STATUSES:
        return False
    if record["status"] == RunStatus.PENDING_VERSION.value:
        return False
    publish_record(engine, record)
    return True


class Presence:
    """One worker's presence: definition sync at start, then liveness heartbeats.
    ``version``: the version this worker serves (D-21), None for none."""

    def __init__(self, engine: Engine, served: Collection[str], version: str | None = None) -> None:
        self.engine = engine
        self.served = frozenset(served)
        self.version = version
        self.synced = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._down_since: float | None = None

    def start(self) -> None:
        """Sync now if the store answers (pending runs go out before the worker consumes),
        else keep trying in the background."""
        self._attempt()
        self._thread = threading.Thread(
            target=self._loop, name="celery-trigger-presence", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        if self.synced:
            try:  # a clean stop: this worker no longer counts as serving its tasks
                specs = served_specs(self.served)
                self.engine.store.put_task_defs(
                    {**task_defs(specs, 0), **live_defs([s.id for s in specs], self.version, 0)}
                )
            except Exception:
                logger.debug("celery-trigger: could not withdraw liveness", exc_info=True)

    def _attempt(self) -> bool:
        try:
            if not self.synced:
                sync_definitions(self.engine, self.served, self.version)
                self.synced = True
            else:
                self.beat()
        except Exception as exc:
            if self._down_since is None:
                self._down_since = now_ms()
                logger.warning(
                    "celery-trigger: the run store is not reachable (%s); plain tasks keep "
                    "running, celery-trigger work resumes when it is back",
                    exc,
                )
            return False
        if self._down_since is not None:
            logger.warning("celery-trigger: the run store is reachable again")
            self._down_since = None
        return True

    def beat(self) -> None:
        """Renew the liveness of the served tasks; release their pending runs."""
        specs = served_specs(self.served)
        live_until = now_ms() + int(LIVE_FOR_S * 1000)
        ids = [s.id for s in specs]
        self.engine.store.put_task_defs(
            {**task_defs(specs, live_until), **live_defs(ids, self.version, live_until)}
        )
        for spec in specs:
            release_pending(self.engine, spec.id)

    def _loop(self) -> None:
        while not self._stop.wait(HEARTBEAT_S if self._down_since is None else STORE_RETRY_S):
            self._attempt()
