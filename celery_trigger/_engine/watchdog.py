"""Per-process attempt watchdog: lease heartbeats, ``max_duration`` and cancellation.

One daemon thread per process (created lazily, and again after a fork) renews the lease of
every attempt executing in this process every ``lease/3`` seconds, at most ``CHECK_S`` apart
(one round trip for all of them): so an attempt learns of a cancel within about a second.
When a renewal fails the run was cancelled (or taken over), and when an attempt passes its
``max_duration`` budget, the watchdog raises an exception asynchronously in the thread
running the attempt. Both exceptions derive from ``BaseException`` so user ``except
Exception`` blocks cannot swallow them.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .._store.base import Store

logger = logging.getLogger("celery_trigger")

#: Longest time between two lease renewals (s): how soon an attempt learns of its cancel.
CHECK_S = 0.5


class AttemptInterrupt(BaseException):
    """Base of the asynchronous interrupts the watchdog delivers."""


class MaxDurationExceeded(AttemptInterrupt):
    """The attempt used more compute time than its ``max_duration``."""


class RunCancelled(AttemptInterrupt):
    """The run was cancelled while this attempt executed."""


@dataclass
class Watch:
    run_id: str
    token: str
    thread_id: int
    deadline: float | None
    interrupted: type[AttemptInterrupt] | None = None
    paused_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _interrupt(thread_id: int, exc: type[BaseException]) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc))


class Watchdog:
    """Tracks the attempts executing in this process."""

    def __init__(self, store: Store, lease_seconds: float) -> None:
        self.store = store
        self.lease_ms = int(lease_seconds * 1000)
        self._watches: dict[str, Watch] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(
            target=self._loop, name="celery-trigger-watchdog", daemon=True
        )
        self._thread.start()

    def start(self, run_id: str, token: str, max_duration: float | None) -> Watch:
        deadline = time.monotonic() + max_duration if max_duration else None
        watch = Watch(run_id, token, threading.get_ident(), deadline)
        with self._lock:
            self._watches[run_id] = watch
            self._ensure_thread()
        self._wake.set()
        return watch

    def stop(self, run_id: str) -> None:
        with self._lock:
            self._watches.pop(run_id, None)

    def pause(self, watch: Watch) -> None:
        """Stop the compute clock (a durable wait in progress)."""
        watch.paused_at = time.monotonic()

    def resume(self, watch: Watch) -> None:
        if watch.paused_at is not None and watch.deadline is not None:
            watch.deadline += time.monotonic() - watch.paused_at
        watch.paused_at = None

    def _loop(self) -> None:
        interval = max(0.05, min(CHECK_S, self.lease_ms / 3000))
        next_renew = time.monotonic() + interval
        while True:
            self._wake.wait(timeout=0.1)
            self._wake.clear()
            now = time.monotonic()
            with self._lock:
                watches = list(self._watches.values())
            for watch in watches:
                if (
                    watch.interrupted is None
                    and watch.paused_at is None
                    and watch.deadline is not None
                    and now >= watch.deadline
                ):
                    self._fire(watch, MaxDurationExceeded)
            if now >= next_renew and watches:
                next_renew = now + interval
                self._renew(watches)

    def _renew(self, watches: list[Watch]) -> None:
        try:
            lost = self.store.renew_leases(
                [(w.run_id, w.token) for w in watches], int(time.time() * 1000), self.lease_ms
            )
        except Exception:  # a Redis blip: try again next round, leases have slack
            logger.warning("celery-trigger: lease renewal failed", exc_info=True)
            return
        for run_id in lost or ():
            with self._lock:
                watch = self._watches.get(run_id)
            if watch is not None and watch.interrupted is None:
                self._fire(watch, RunCancelled)

    def _fire(self, watch: Watch, exc: type[AttemptInterrupt]) -> None:
        watch.interrupted = exc
        _interrupt(watch.thread_id, exc)
