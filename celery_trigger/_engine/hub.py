"""The realtime hub: one thread per process that waits on every event stream its
subscriptions watch and wakes them (DESIGN §7).

A subscription never blocks on Redis itself. It registers the stream keys it cares about with
the engine's hub (``watch``) and then sleeps on its own ``Signal``; the hub's thread keeps one
blocking ``wait_streams`` (``XREAD BLOCK``) over all watched keys and, when a stream moves,
wakes every signal watching it. One connection and one thread serve any number of
subscriptions, so a web process can hold thousands of SSE clients.

Invariants:
- A key's position starts at the stream's tail read inside ``watch``, before ``watch``
  returns. A subscription reads the state it reports *after* ``watch`` returns, so a change is
  either in what it reads or in an event after that position: nothing is missed.
- The hub only wakes; subscriptions read what changed themselves, from their own positions.
  A spurious wake costs one read, a missed one is impossible while the hub runs; when Redis is
  unreachable the hub wakes everyone with ``resync`` and retries with back-off.
- A watch of a new key while the thread is blocked appends to the hub's private poke stream,
  which the thread also watches, so new keys take effect at once.
- The thread exits when nothing is watched and starts again on the next ``watch``.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import StoreUnavailableError

logger = logging.getLogger("celery_trigger.realtime")

BLOCK_MS = 5_000  # how long one XREAD blocks; new keys interrupt it through the poke stream
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
    """Example: ``hub_for(engine).watch(signal, [keys.events(run_id)])``."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._watchers: dict[str, set[Signal]] = {}
        self._positions: dict[str, str] = {}
        self._poke_key: str = store.keys.hub(uuid.uuid4().hex)
        self._thread: threading.Thread | None = None
        self._blocked = False
        self._poked = False
        # how often each key moved, and the last record read after a move (``read``)
        self._generations: dict[str, int] = {}
        self._records: dict[str, tuple[int, Any]] = {}

    def watch(self, signal: Signal, keys: Sequence[str]) -> None:
        """Wake ``signal`` on every entry appended to ``keys`` from now on."""
        fresh: list[str] = []
        with self._lock:
            for key in keys:
                watchers = self._watchers.setdefault(key, set())
                if not watchers and key not in self._positions:
                    fresh.append(key)
                watchers.add(signal)
        try:
            tails = {key: self._store.stream_tail(key) for key in fresh}
        except BaseException:
            self.unwatch(signal, keys)  # all or nothing: the caller may simply try again
            raise
        with self._lock:
            for key, tail in tails.items():
                if key in self._watchers:
                    self._positions.setdefault(key, tail)
            start = self._thread is None
            if start:
                self._thread = threading.Thread(
                    target=self._run, name="celery-trigger-realtime", daemon=True
                )
                self._thread.start()
            poke = bool(fresh) and self._blocked and not self._poked
            self._poked = self._poked or poke
        if poke:
            self._store.poke(self._poke_key)

    def unwatch(self, signal: Signal, keys: Iterable[str]) -> None:
        with self._lock:
            for key in keys:
                watchers = self._watchers.get(key)
                if watchers is None:
                    continue
                watchers.discard(signal)
                if not watchers:
                    del self._watchers[key]
                    self._positions.pop(key, None)
            idle = not self._watchers and self._blocked and not self._poked
            self._poked = self._poked or idle
            for key in keys:
                if key not in self._watchers:
                    self._generations.pop(key, None)
                    self._records.pop(key, None)
        if idle:  # let the thread see it has nothing left to do and exit now
            try:
                self._store.poke(self._poke_key)
            except Exception:  # the thread exits at its next wake-up anyway
                logger.debug("realtime: could not poke the idle hub", exc_info=True)

    def _idle_exit(self) -> bool:
        """End the thread when nothing is watched (also after an error: the store may be
        closing because its engine is shutting down)."""
        with self._lock:
            self._blocked = False
            if not self._watchers:
                self._thread = None
                return True
            return False

    def read(self, key: str, fetch: Callable[[], Any]) -> Any:
        """``fetch()``, shared by every subscription woken by the same move of ``key``.

        A result is reused only by callers that arrive when ``key`` has not moved since the
        read *started*: it then contains every change announced on ``key`` so far (K
        subscriptions on one run cost one read per change, not K). Later changes move the
        key, and the next caller reads again.
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

    @property
    def watched(self) -> int:
        """How many stream keys the hub waits on (for tests and the benchmark)."""
        with self._lock:
            return len(self._positions)

    def _run(self) -> None:
        poke_position = "0-0"
        failures = 0
        pause = threading.Event()  # never set: a wait with a timeout that nothing can cut short
        while True:
            with self._lock:
                if not self._watchers:
                    self._thread = None
                    return
                positions = dict(self._positions)
                self._blocked = True
                self._poked = False  # one poke per wait: many new keys share it
            positions[self._poke_key] = poke_position
            try:
                moved = self._store.wait_streams(positions, BLOCK_MS)
                failures = 0
            except StoreUnavailableError as exc:
                if self._idle_exit():
                    return
                with self._lock:
                    everyone = set().union(*self._watchers.values()) if self._watchers else set()
                if failures == 0:
                    logger.warning("realtime: store unreachable, retrying: %s", exc)
                pause.wait(RETRY_S[min(failures, len(RETRY_S) - 1)])
                failures += 1
                for signal in everyone:
                    signal.wake(resync=True)
                continue
            except Exception:  # a bug must not silence every subscription of the process
                if self._idle_exit():
                    return
                logger.exception("realtime hub failed; restarting its loop")
                pause.wait(RETRY_S[-1])
                continue
            poke_position = moved.pop(self._poke_key, poke_position)
            woken: set[Signal] = set()
            with self._lock:
                self._blocked = False
                for key, last in moved.items():
                    if key in self._positions:
                        self._positions[key] = last
                        self._generations[key] = self._generations.get(key, 0) + 1
                        woken.update(self._watchers.get(key, ()))
            for signal in woken:
                signal.wake()


def hub_for(engine: Any) -> Hub:
    """The engine's hub, created on first use."""
    hub: Hub | None = getattr(engine, "_realtime_hub", None)
    if hub is None:
        with _CREATE:
            hub = getattr(engine, "_realtime_hub", None)
            if hub is None:
                hub = Hub(engine.store)
                engine._realtime_hub = hub
    return hub


_CREATE = threading.Lock()
