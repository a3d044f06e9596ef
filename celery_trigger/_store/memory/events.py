"""MemoryStore's realtime part: streams, change events and blocking reads (DESIGN §7).

Mirrors ``lua/events.lua``, ``lua/stream_append.lua`` and the stream commands RedisStore
uses. Ids are Redis-style ``"<ms>-<seq>"``, strictly increasing per stream; a blocking
every append is delivered to the listeners subscribed to its key (``MemoryListener``), like
the PUBLISH the scripts make. Streams are trimmed like the Redis ones (tag and batch events
10000)
but do not expire: the embedded mode lives as long as its process.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..._vocab import EventKind
from ..types import Feed, feed_key
from .base import MemoryBase
from .state import MemoryState, mono_ms

if TYPE_CHECKING:
    from ..._keys import Keys

INDEX_EVENTS_MAXLEN = 10_000

Entry = tuple[str, dict[str, str]]


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class MemoryEvents(MemoryBase):
    """Realtime feeds, change events and single-use marks (``RealtimeStore``)."""

    keys: Keys
    _state: MemoryState
    _lock: threading.RLock

    _listeners: set[MemoryListener]  # every open listener (``listener()``)

    def _streams(self) -> dict[str, list[Entry]]:
        return self._state.streams

    def _xadd(self, key: str, fields: dict[str, str], maxlen: int | None = None) -> str:
        entries = self._streams().setdefault(key, [])
        now = int(time.time() * 1000)
        ms, seq = _id_key(entries[-1][0]) if entries else (0, 0)
        new_id = f"{now}-0" if now > ms else f"{ms}-{seq + 1}"
        entries.append((new_id, fields))
        if maxlen is not None and len(entries) > maxlen:
            del entries[: len(entries) - maxlen]
        self._publish(key)  # like the PUBLISH after each XADD in the scripts
        return new_id

    def _emit(self, run_id: str, kind: EventKind) -> None:
        """``emit_event`` of ``lua/events.lua``; called under the lock after the change."""
        record = self._state.hashes.get(self.keys.run(run_id))
        if record is None or "id" not in record:
            return
        rid = record["id"]
        record["ev"] = str(int(record.get("ev") or 0) + 1)
        self._publish(self.keys.events(rid))  # run events are a channel only: no history
        tags = record.get("tags") or "[]"
        for tag in json.loads(tags) if tags not in ("", "[]") else ():
            self._xadd(self.keys.tag_events(tag), {"r": rid, "k": kind.value}, INDEX_EVENTS_MAXLEN)
        if record.get("batch"):
            self._xadd(
                self.keys.batch_events(record["batch"]),
                {"r": rid, "k": kind.value},
                INDEX_EVENTS_MAXLEN,
            )

    # the Store protocol's realtime operations ------------------------------------------------
    def stream_tail(self, feed: Feed) -> str:
        key = feed_key(self.keys, feed)
        with self._lock:
            entries = self._streams().get(key)
            return entries[-1][0] if entries else "0-0"

    def read_stream(self, feed: Feed, after: str, count: int) -> list[Entry]:
        key = feed_key(self.keys, feed)
        with self._lock:
            return self._after(key, after)[: max(0, count)]

    def _after(self, key: str, after: str) -> list[Entry]:
        entries = self._streams().get(key) or []
        pos = _id_key(after)
        # entries are ordered: scan back from the end, as readers are mostly near the tail
        i = len(entries)
        while i > 0 and _id_key(entries[i - 1][0]) > pos:
            i -= 1
        return [(entry_id, dict(fields)) for entry_id, fields in entries[i:]]

    def append_stream(
        self, run_id: str, key: str, writer: str, seq: int, chunks: Sequence[str]
    ) -> tuple[str, int]:
        """``stream_append.lua``."""
        with self._lock:
            record = self._state.hashes.get(self.keys.run(run_id))
            if record is None:
                return "missing", 0
            first, nxt = 0, seq + len(chunks)
            stored = record.get(f"st:{key}")
            if stored is not None:
                who, _, count = stored.rpartition("|")
                if who == writer and count.isdigit():
                    first = max(0, int(count) - seq)
                    nxt = max(nxt, int(count))
            stream = self.keys.run_stream(run_id, key)
            for chunk in chunks[first:]:
                self._xadd(stream, {"d": chunk})
            record[f"st:{key}"] = f"{writer}|{nxt}"
            names: list[str] = json.loads(record.get("streams") or "[]")
            if key not in names:
                names.append(key)
                record["streams"] = json.dumps(names, separators=(",", ":"))
                self._emit(run_id, EventKind.STREAM)
            return "ok", max(0, len(chunks) - first)

    def publish(self, feed: Feed) -> None:
        with self._lock:
            self._publish(feed_key(self.keys, feed))

    def _publish(self, channel: str) -> None:
        for listener in list(self._listeners):
            listener.deliver(channel)

    def listener(self) -> MemoryListener:
        listener = MemoryListener(self)
        with self._lock:
            self._listeners.add(listener)
        return listener

    def mark_token_used(self, token_id: str, ttl_ms: int) -> bool:
        key = self.keys.token_use(token_id)
        with self._lock:
            if self._state.get(key) is not None:
                return False
            self._state.strings[key] = ("1", mono_ms() + max(1, ttl_ms))
            return True


class MemoryListener:
    """``Listener`` of a MemoryStore: a queue filled under the store's lock."""

    def __init__(self, store: MemoryEvents) -> None:
        self._store = store
        self._channels: dict[str, Feed] = {}
        self._items: deque[tuple[str, Feed]] = deque()
        self._ready = threading.Condition()

    def deliver(self, channel: str) -> None:
        with self._ready:
            feed = self._channels.get(channel)
            if feed is not None:
                self._items.append(("message", feed))
                self._ready.notify()

    def subscribe(self, feeds: Sequence[Feed]) -> None:
        with self._store._lock, self._ready:  # confirmed before any later publish
            for feed in feeds:
                self._channels[feed_key(self._store.keys, feed)] = feed
                self._items.append(("subscribe", feed))
            self._ready.notify()

    def unsubscribe(self, feeds: Sequence[Feed]) -> None:
        with self._store._lock, self._ready:
            for feed in feeds:
                self._channels.pop(feed_key(self._store.keys, feed), None)
                self._items.append(("unsubscribe", feed))
            self._ready.notify()

    def get(self, timeout: float) -> list[tuple[str, Feed]]:
        with self._ready:
            if not self._items:
                self._ready.wait(timeout)
            out = list(self._items)
            self._items.clear()
            return out

    def close(self) -> None:
        with self._store._lock:
            self._store._listeners.discard(self)
