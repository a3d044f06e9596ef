"""The realtime hub: one thread per process that listens for changes of everything its
subscriptions follow and wakes them (DESIGN §7).

A subscription never blocks on Redis itself. It registers the stream keys it cares about with
the engine's hub (``watch``) and then sleeps on its own ``Signal``. Every append to those
streams is also published on a channel of the same name (``lua/events.lua``); the hub's
thread holds one pub/sub connection (``Store.listener``) subscribed to the channels of all
watched keys and wakes the signals of a key when a message arrives. Redis does the filtering,
so a wake-up costs the same whether the process follows ten runs or ten thousand.

Invariants:
- ``watch`` returns only once Redis confirmed the subscription of every new key. A
  subscription reads the state it reports *after* ``watch`` returns, so a change is either in
  what it reads or announced by a later message: nothing is missed.
- The hub only wakes; subscriptions read what changed themselves (records, or their own
  positions in streams). A spurious wake costs one read. Messages sent while the connection
  was down are lost, so after a reconnect every key is subscribed again and, once that is
  confirmed, its subscriptions are woken with ``resync`` (they read everything again).
- Only the hub's thread uses the listener. Other threads queue (un)subscriptions and publish
  on the hub's private channel to wake it; many queued keys share one such poke.
- The thread exits when nothing is watched and starts again on the next ``watch``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .._store.base import Feed, Listener, Store
from ..errors import StoreUnavailableError
from .engine import Engine

logger = logging.getLogger("celery_trigger.realtime")

LISTEN_S = 5.0  # one wait for messages; the thread re-checks its queues at least this often
CONFIRM_S = 10.0  # how long ``watch`` waits for Redis to confirm a subscription
RETRY_S = (0.1, 0.25, 0.5, 1.0, 2.0)  # back-off while the store is unreachable


class Signal:
    """Wakes one subscription, whether it waits in a thread or on an event loop."""

    __slots__ = ("_aevent", "_event", "_loop", "resync")

    def __init__(self) -> None:
        self._event = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._aevent: asyncio.Event | None = None
        #: set when the subscription must re-read everything (the store was unreachable)
        self.resync = False

    def wake(self, *, resync: bool = False) -> None:
        if resync:
            self.resync = True
        self._event.set()
        loop, aevent = self._loop, self._aevent
        if loop is not None and aevent is not None:
            try:
                loop.call_soon_threadsafe(aevent.set)
            except RuntimeError:  # the loop was closed under us: nobody is waiting there
                pass

    def clear(self) -> None:
        self._event.clear()
        if self._aevent is not None:
            self._aevent.clear()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)

    async def wait_async(self, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._aevent is None:
            self._loop, self._aevent = loop, asyncio.Event()
            if self._event.is_set():
                self._aevent.set()
        try:
            await asyncio.wait_for(self._aevent.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True


class Hub:
    """Example: ``hub_for(engine).watch(signal, [Feed.run(run_id)])``."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.pid = os.getpid()
        self._lock = threading.Lock()
        self._watchers: dict[Feed, set[Signal]] = {}
        # key -> set once Redis confirmed its subscription (cleared while resubscribing)
        self._confirmed: dict[Feed, threading.Event] = {}
        self._to_subscribe: set[Feed] = set()
        self._to_unsubscribe: set[Feed] = set()
        self._resubscribing: set[Feed] = set()
        self._poke_channel = Feed.hub(uuid.uuid4().hex)
        self._thread: threading.Thread | None = None
        self._poked = False
        # how often each key moved, and the last record read after a move (``read``)
        self._generations: dict[Feed, int] = {}
        self._records: dict[Feed, tuple[int, Any]] = {}

    def watch(self, signal: Signal, keys: Sequence[Feed]) -> None:
        """Wake ``signal`` on every change announced on ``keys`` from now on."""
        pending: list[threading.Event] = []
        with self._lock:
            for key in keys:
                self._watchers.setdefault(key, set()).add(signal)
                confirmed = self._confirmed.get(key)
                if confirmed is None:
                    confirmed = self._confirmed[key] = threading.Event()
                    self._to_subscribe.add(key)
                    self._to_unsubscribe.discard(key)
                if not confirmed.is_set():
                    pending.append(confirmed)
            poke = bool(pending) and self._ensure_thread()
        try:
            if poke:
                self._store.publish(self._poke_channel)
            deadline = time.monotonic() + CONFIRM_S
            for confirmed in pending:
                if not confirmed.wait(max(0.0, deadline - time.monotonic())):
                    raise StoreUnavailableError(
                        f"realtime: Redis did not confirm a subscription within {CONFIRM_S:g} s"
                    )
        except BaseException:
            self.unwatch(signal, keys)  # all or nothing: the caller may simply try again
            raise

    def unwatch(self, signal: Signal, keys: Iterable[Feed]) -> None:
        with self._lock:
            for key in keys:
                watchers = self._watchers.get(key)
                if watchers is None:
                    continue
                watchers.discard(signal)
                if not watchers:
                    del self._watchers[key]
                    self._confirmed.pop(key, None)
                    self._generations.pop(key, None)
                    self._records.pop(key, None)
                    self._resubscribing.discard(key)
                    if key in self._to_subscribe:
                        self._to_subscribe.discard(key)
                    else:
                        self._to_unsubscribe.add(key)
            # nothing left: wake the thread so that it exits now rather than after LISTEN_S
            poke = not self._watchers and self._thread is not None and not self._poked
            self._poked = self._poked or poke
        if poke:
            try:
                self._store.publish(self._poke_channel)
            except Exception:  # the thread exits at its next wake-up anyway
                logger.debug("realtime: could not wake the idle hub", exc_info=True)

    def _ensure_thread(self) -> bool:
        """Start the thread if needed (under the lock); True when a running one must be
        poked to see new work."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="celery-trigger-realtime", daemon=True
            )
            self._thread.start()
            return False
        poke = not self._poked
        self._poked = True
        return poke

    def read(self, key: Feed, fetch: Callable[[], Any]) -> Any:
        """``fetch()``, shared by every subscription woken by the same change of ``key``.

        A result is reused only by callers that arrive when no message came for ``key``
        since the read *started*: it then contains every change announced on ``key`` so far
        (K subscriptions on one run cost one read per change, not K). A later change sends a
        message, and the next caller reads again.
        """
        with self._lock:
            generation = self._generations.get(key, 0)
            cached = self._records.get(key)
            if cached is not None and cached[0] >= generation:
                return cached[1]
        value = fetch()
        with self._lock:
            if key in self._watchers:
                current = self._records.get(key)
                if current is None or current[0] < generation:
                    self._records[key] = (generation, value)
        return value

    def cached(self, key: Feed) -> bool:
        """``read(key, ...)`` would answer without fetching (no I/O) right now."""
        with self._lock:
            cached = self._records.get(key)
            return cached is not None and cached[0] >= self._generations.get(key, 0)

    @property
    def watched(self) -> int:
        """How many keys the hub listens for (for tests and the benchmark)."""
        with self._lock:
            return len(self._watchers)

    def _run(self) -> None:
        listener: Listener | None = None
        failures = 0
        pause = threading.Event()  # never set: a wait with a timeout that nothing can cut short
        try:
            while True:
                with self._lock:
                    if not self._watchers and not self._to_subscribe:
                        self._thread = None
                        return
                    subscribe = sorted(self._to_subscribe)
                    unsubscribe = sorted(self._to_unsubscribe)
                    self._to_subscribe.clear()
                    self._to_unsubscribe.clear()
                    self._poked = False
                try:
                    if listener is None:
                        listener = self._store.listener()
                        subscribe = self._reconnect(listener, subscribe, failures > 0)
                    listener.unsubscribe(unsubscribe)
                    listener.subscribe(subscribe)
                    items = listener.get(LISTEN_S)
                    failures = 0
                except StoreUnavailableError as exc:
                    with self._lock:  # not confirmed: ask again, if still wanted
                        self._to_subscribe.update(k for k in subscribe if k in self._watchers)
                    _close(listener)
                    listener = None
                    if failures == 0:
                        logger.warning("realtime: store unreachable, retrying: %s", exc)
                    pause.wait(RETRY_S[min(failures, len(RETRY_S) - 1)])
                    failures += 1
                    continue
                self._dispatch(items)
        except Exception:  # a bug must not leave subscriptions waiting on a dead thread
            logger.exception("realtime hub failed")
            with self._lock:
                self._thread = None
                everyone = set().union(*self._watchers.values()) if self._watchers else set()
                for confirmed in self._confirmed.values():
                    confirmed.set()  # release waiting ``watch`` calls; they poll instead
            for signal in everyone:
                signal.wake(resync=True)
        finally:
            _close(listener)

    def _reconnect(self, listener: Listener, subscribe: list[Feed], outage: bool) -> list[Feed]:
        """A new connection: its own channel, and after an outage every watched key again
        (its subscriptions are woken with resync once that is confirmed)."""
        listener.subscribe([self._poke_channel])
        if not outage:
            return subscribe
        with self._lock:
            self._resubscribing = set(self._watchers)
            return sorted(set(subscribe) | self._resubscribing)

    def _dispatch(self, items: list[tuple[str, Feed]]) -> None:
        woken: dict[Signal, bool] = {}
        with self._lock:
            for kind, channel in items:
                if kind == "subscribe":
                    confirmed = self._confirmed.get(channel)
                    if confirmed is not None:
                        confirmed.set()
                    if channel in self._resubscribing:
                        self._resubscribing.discard(channel)
                        for signal in self._watchers.get(channel, ()):
                            woken[signal] = True
                elif kind == "message" and channel in self._watchers:
                    self._generations[channel] = self._generations.get(channel, 0) + 1
                    for signal in self._watchers[channel]:
                        woken.setdefault(signal, False)
        for signal, resync in woken.items():
            signal.wake(resync=resync)


def _close(listener: Listener | None) -> None:
    if listener is not None:
        try:
            listener.close()
        except Exception:  # best effort: the connection may already be gone
            logger.debug("realtime: closing the listener failed", exc_info=True)


def hub_for(engine: Engine) -> Hub:
    """The engine's hub, created on first use in each process (a forked child, such as a
    prefork pool process, gets its own: threads do not survive a fork)."""
    hub = _hubs.get(engine)
    if hub is None or hub.pid != os.getpid():
        with _CREATE:
            hub = _hubs.get(engine)
            if hub is None or hub.pid != os.getpid():
                hub = _hubs[engine] = Hub(engine.store)
    return hub


_CREATE = threading.Lock()
#: Each engine's hub in this process (an engine that is gone takes its hub along).
_hubs: weakref.WeakKeyDictionary[Engine, Hub] = weakref.WeakKeyDictionary()
