"""The timer service: one sorted set of wake-ups, served by a thread in every worker.

Each tick claims due members atomically (a member goes to one claimer, under a lease), acts
on each, then acknowledges it. A claimer that dies mid-action loses its lease and the member
is claimed again, so every wake-up happens at least once; each action is idempotent (it
checks the run's status in one script), so it has its effect once (DESIGN §5).

Members are ``<kind>|<target>`` (``_vocab.TimerKind``; the target is a run id unless said):
- ``enqueue``: a delayed run is due: DELAYED → QUEUED, publish;
- ``ttl``: a queued run's TTL passed: QUEUED (never started) → EXPIRED;
- ``retry``: a long retry delay passed: publish the next attempt;
- ``pub``: publish watchdog: a run still QUEUED and never claimed is published again (and
  the watchdog armed again); on a PENDING_VERSION run (a worker refused it: unknown task),
  it is published once a live worker serves its task, else checked again shortly;
- ``resume``: a parked run is due (duration wait, or the fallback after a notify);
- ``notify``: a run or token resolved and its waiters may not have been told yet;
- ``tokento``: a waitpoint token's timeout passed;
- ``lease``: an executing run's lease may have lapsed (its worker died or hangs): when it
  has, the run is published again and the next claim takes it over as a new attempt;
- ``sched`` (target: a schedule id): a schedule's occurrence is due: trigger it (once per
  occurrence, ``schedules.fire``) and arm the next one;
- ``promote``: a run was handed a concurrency slot: publish it unless the releasing
  process already did; ``pump`` (target: a sub-queue id): a slot of that sub-queue lapsed,
  admit its next waiting runs; ``reap|slots``: drop slots whose lease lapsed (DESIGN §6).

Pacing: on a store that announces new early timers (``wakes_timers``: Redis, whose scripts
publish on ``Feed.timers()`` when a member due within 3 s becomes the earliest), the thread
sleeps until the earliest due time (``next_timer_due``), at most ``MAX_IDLE_S``, and the
realtime hub wakes it early on such a message (or after a reconnect). An idle worker so
makes a few commands a second instead of polling. Elsewhere it ticks every
``trigger_timer_poll_interval``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .._store.types import Feed
from .._vocab import RunStatus, TimerKind, parse_timer
from ..errors import StoreUnavailableError
from . import concurrency
from .attempt import expire_run
from .clock import now_ms
from .dispatch import enqueue_delayed, publish_record, republish_queued
from .engine import Engine
from .hub import Signal, hub_for
from .presence import recheck_pending
from .schedules import fire
from .tokens import time_out
from .waiters import notify_waiters, wake

logger = logging.getLogger("celery_trigger")

CLAIM_BATCH = 200
#: The longest sleep between ticks when the store wakes the service (below the 3 s horizon
#: of ``lua/timer_wake.lua``).
MAX_IDLE_S = 2.0


class TimerService:
    """Claims and fires due timers. ``tick()`` does one round; ``start()`` runs a thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._signal = Signal()
        self._watching = False
        self.handlers: dict[TimerKind, Callable[[str], None]] = {
            TimerKind.ENQUEUE: self._enqueue,
            TimerKind.TTL: self._expire,
            TimerKind.RETRY: self._publish_if_queued,
            TimerKind.PUBLISH: self._publish_if_queued,
            TimerKind.RESUME: self._resume,
            TimerKind.NOTIFY: self._notify,
            TimerKind.TOKEN_TIMEOUT: self._token_timeout,
            TimerKind.LEASE: self._check_lease,
            TimerKind.SCHEDULE: self._fire_schedule,
            TimerKind.PROMOTE: self._promote,
            TimerKind.PUMP: self._pump,
            TimerKind.REAP: self._reap,
            TimerKind.RETIRE: self._retire,
        }

    def tick(self) -> int:
        now = int(time.time() * 1000)
        lease_ms = int(self.engine.settings.timer_claim_lease * 1000)
        members = self.engine.store.claim_timers(now, CLAIM_BATCH, lease_ms)
        done: list[str] = []
        for member in members:
            kind, target = parse_timer(member)
            handler = self.handlers.get(kind) if kind is not None else None
            try:
                if handler is None:
                    logger.error("celery-trigger: unknown timer kind %r; dropping", member)
                else:
                    handler(target)
                done.append(member)
            except Exception:
                # Left claimed: it is retried when the claim lease lapses.
                logger.exception("celery-trigger: timer %s failed; it will be retried", member)
        self.engine.store.ack_timers(done)
        return len(members)

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, name="celery-trigger-timers", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._signal.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        interval = self.engine.settings.timer_poll_interval
        failing = False
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                self._signal.clear()  # before the tick: a message during it is not lost
                try:
                    if self.tick() >= CLAIM_BATCH:
                        continue  # more are due: no pause
                    pause = self._pause(interval, started)
                    failing = False
                except Exception:
                    # One warning per outage (a store that is down fails every tick).
                    log = logger.debug if failing else logger.warning
                    log("celery-trigger: timer tick failed; retrying", exc_info=True)
                    failing = True
                    self._stop.wait(1.0)
                    pause = max(0.0, interval - (time.monotonic() - started))
                self._signal.wait(pause)
        finally:
            self._unwatch()

    def _pause(self, interval: float, started: float) -> float:
        """How long to sleep after a tick: until the next due time (at most ``MAX_IDLE_S``)
        when the store wakes us, else the rest of a fixed period (lateness < one interval)."""
        if not self._watch():
            return max(0.0, interval - (time.monotonic() - started))
        due = self.engine.store.next_timer_due()
        if due is None:
            return MAX_IDLE_S
        # One ms late rather than early: a tick claims members due at its own clock reading.
        return min(MAX_IDLE_S, max(0.0, (due + 1) / 1000 - time.time()))

    def _watch(self) -> bool:
        """Follow ``Feed.timers()`` through the realtime hub (once); False to keep polling."""
        if self._watching or not getattr(self.engine.store, "wakes_timers", False):
            return self._watching
        try:
            hub_for(self.engine).watch(self._signal, [Feed.timers()])
        except StoreUnavailableError:
            return False  # tried again after the next tick
        self._watching = True
        return True

    def _unwatch(self) -> None:
        if self._watching:
            self._watching = False
            hub_for(self.engine).unwatch(self._signal, [Feed.timers()])

    # actions -----------------------------------------------------------------------------
    def _enqueue(self, run_id: str) -> None:
        record = enqueue_delayed(self.engine, run_id, only_if_due=False)
        if record is not None:
            publish_record(self.engine, record)

    def _expire(self, run_id: str) -> None:
        expire_run(self.engine, run_id)

    def _check_lease(self, run_id: str) -> None:
        engine = self.engine
        record = engine.store.get_run(run_id)
        if record is None or record.get("status") != RunStatus.EXECUTING.value:
            return
        stamp = now_ms()
        lease_exp = int(record.get("lease_exp") or 0)
        if lease_exp > stamp:
            engine.store.add_timers([(TimerKind.LEASE.member(run_id), lease_exp + 1000)])
            return
        logger.warning(
            "celery-trigger: the lease of %s lapsed (its worker died or hangs); "
            "publishing it again",
            run_id,
        )
        publish_record(engine, record)
        lease_ms = int(engine.settings.lease_seconds * 1000)
        engine.store.add_timers([(TimerKind.LEASE.member(run_id), stamp + 2 * lease_ms)])

    def _resume(self, run_id: str) -> None:
        wake(self.engine, run_id)

    def _notify(self, member: str) -> None:
        notify_waiters(self.engine, member)

    def _token_timeout(self, token_id: str) -> None:
        time_out(self.engine, token_id)

    def _fire_schedule(self, schedule_id: str) -> None:
        fire(self.engine, schedule_id)

    def _promote(self, run_id: str) -> None:
        concurrency.on_promote(self.engine, run_id)

    def _pump(self, sub: str) -> None:
        concurrency.on_pump(self.engine, sub)

    def _reap(self, target: str) -> None:
        concurrency.on_reap(self.engine, target)

    def _retire(self, run_id: str) -> None:
        self.engine.store.retire_run(run_id)

    def _publish_if_queued(self, run_id: str) -> None:
        status = republish_queued(self.engine, run_id)
        if status == RunStatus.PENDING_VERSION.value:
            recheck_pending(self.engine, run_id)  # no live worker served its task
