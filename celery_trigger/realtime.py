"""Realtime subscriptions to runs, tags and batches (SEMANTICS §12.1, DESIGN §7).

Example::

    for run in ct.runs.subscribe_to_run(handle.id):
        print(run.status, (run.metadata or {}).get("progress"))

    async for part in ct.runs.subscribe_to_run(handle.id).with_streams():
        if part.type == "openai":
            print(part.chunk, end="")

How it works: every change of a run appends an event to its stream and to the streams of its
tags and batch, in the same Lua call as the change (``lua/events.lua``). A subscription asks
the process's hub (``_engine/hub.py``) to wake it when those streams move, then reads the run
records themselves through its source (``_engine/subscriptions.py``, which makes every store
read): the record is the truth and events only say "look again". Hence:

- the first item is the current state, and no item is older than one yielded before it (each
  comes from a fresh read; identical reads are not repeated);
- a subscriber that loses Redis retries, then reads the current state again: it may skip
  intermediate states (they are coalesced, as upstream allows) but never misses the latest;
- stream chunks are read from each stream's position, so a late reader gets a stream from its
  first chunk and ``cursor`` lets a reconnecting client (SSE ``Last-Event-ID``) resume
  without repeats or gaps.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import json
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any, Generic, TypeVar

from ._engine.engine import Engine
from ._engine.hub import RETRY_S, Signal, hub_for
from ._engine.subscriptions import (
    LOG_STREAM,
    STREAM_START,
    RunSource,
    Source,
    batch_source,
    run_source,
    tag_source,
)
from ._serialization import loads
from ._store.base import Feed
from .errors import StoreUnavailableError
from .logger import LogEntry
from .options import Duration, to_seconds
from .result import Run

logger = logging.getLogger("celery_trigger.realtime")

T = TypeVar("T")

FALLBACK_S = 5.0  # re-read even without a wake-up (a safety net, never the mechanism)
MAX_TAG_WINDOW_S = 7 * 24 * 3600
RUN_COLUMNS = frozenset(f.name for f in fields(Run))
# what a skipped column reads as (None unless the field's type needs another empty value)
_BLANK: dict[str, Any] = {"tags": [], "children": [], "realtime_streams": []}


@dataclass(frozen=True)
class StreamPart:
    """An item of ``subscription.with_streams()``: ``type == "run"`` for a run update, else
    the stream key with one ``chunk`` of it; ``run`` is the run's latest known state."""

    type: str
    run: Run
    chunk: Any = None


def _part(key: str, run: Run, chunk: Any) -> StreamPart:
    """A chunk of a realtime stream, or (``type == "$log"``, a name no user stream can have) a
    record of the run's own log as ``LogEntry.to_json()``."""
    if key == LOG_STREAM:
        return StreamPart(LOG_STREAM, run, LogEntry.from_dict(chunk).to_json())
    return StreamPart(key, run, chunk)


def _encode_cursor(positions: dict[str, str]) -> str:
    if not positions:
        return ""
    raw = json.dumps(positions, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> dict[str, str]:
    if not cursor:
        return {}
    if not isinstance(cursor, str):
        raise TypeError("cursor must be the string a subscription's .cursor returned")
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise ValueError("cursor is not one a subscription returned") from None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise ValueError("cursor is not one a subscription returned")
    return data


class RunSubscription(Generic[T]):
    """A live view of runs; iterate with ``for`` or ``async for``.

    Yields ``Run`` objects, or ``StreamPart`` items after ``with_streams()``. Ends by itself
    only for ``subscribe_to_run(..., stop_on_completion=True)`` once the run is final;
    otherwise call ``unsubscribe()`` (or use ``with``/``async with``). One subscription is
    iterated by one consumer at a time.
    """

    def __init__(
        self, source: Source, *, skip_columns: Iterable[str] = (), cursor: str | None = None
    ) -> None:
        self._source = source
        self._skip = frozenset(skip_columns)
        self._streams = False
        self._chunks = _decode_cursor(cursor)  # "<run id>/<key>" -> last chunk id read
        self._watched: set[Feed] = set()
        self._last: dict[str, Run] = {}
        self._versions: dict[str, int] = {}  # run id -> the "ev" counter of the last read
        self._keys: dict[str, list[str]] = {}  # run id -> its stream keys
        self._shared_reads = False
        self._fresh = False
        self._buffer: deque[Any] = deque()
        self._signal = Signal()
        self._hub = hub_for(source.engine)
        self._started = self._done = self._closed = False
        self._failures = 0
        self._watch_lock = threading.Lock()

    # public ------------------------------------------------------------------------------
    def with_streams(self) -> RunSubscription[StreamPart]:
        """Yield ``StreamPart`` items: run updates and every chunk of the runs' streams."""
        if self._started:
            raise RuntimeError("with_streams() must be called before iterating")
        self._streams = True
        return self  # type: ignore[return-value]

    def unsubscribe(self) -> None:
        """Stop: a waiting iteration ends, no more items are yielded."""
        self._closed = True
        self._release()
        self._signal.wake()

    @property
    def cursor(self) -> str:
        """Where this subscription is, as an opaque URL-safe string: pass it as ``cursor=``
        to a new subscription to continue after the last item yielded."""
        return _encode_cursor({k: v for k, v in self._chunks.items() if v != STREAM_START})

    def __enter__(self) -> RunSubscription[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unsubscribe()

    async def __aenter__(self) -> RunSubscription[T]:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.unsubscribe()

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        while True:
            if self._buffer:
                return self._take()
            if self._done or self._closed:
                self._release()
                raise StopIteration
            if self._started:
                self._signal.wait(self._pause())
            self._signal.clear()
            self._buffer.extend(self._step())

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        while True:
            if self._buffer:
                return self._take()
            if self._done or self._closed:
                self._release()
                raise StopAsyncIteration
            if self._started:
                await self._signal.wait_async(self._pause())
            self._signal.clear()
            if self._inline():  # a shared read is ready: no I/O, no thread hop
                self._buffer.extend(self._step())
            else:
                self._buffer.extend(await asyncio.to_thread(self._step))

    # internals ---------------------------------------------------------------------------
    def _inline(self) -> bool:
        """The next step of a plain run subscription would be answered by the hub's shared
        read (many subscribers of one run on one event loop)."""
        source = self._source
        return (
            isinstance(source, RunSource)
            and self._shared_reads
            and not self._streams
            and not self._signal.resync
            and self._failures == 0
            and self._hub.cached(source.events_key)
        )

    def _take(self) -> T:
        item = self._buffer.popleft()
        if isinstance(item, tuple):  # (chunk position key, chunk id, part)
            self._chunks[item[0]] = item[1]
            return item[2]  # type: ignore[no-any-return]
        return item  # type: ignore[no-any-return]

    def _pause(self) -> float:
        return RETRY_S[min(self._failures, len(RETRY_S) - 1)] if self._failures else FALLBACK_S

    def _release(self) -> None:
        with self._watch_lock:  # unsubscribe() may come from another thread
            if self._watched:
                self._hub.unwatch(self._signal, self._watched)
                self._watched = set()

    def _watch(self, keys: Iterable[Feed]) -> None:
        with self._watch_lock:
            new = [k for k in keys if k not in self._watched]
            if new and not self._closed:
                self._hub.watch(self._signal, new)  # may raise: then nothing is watched
                self._watched.update(new)

    def _step(self) -> list[Any]:
        """Read what changed; never blocks on a wake-up. Store errors mean "try again"."""
        resync = self._signal.resync or self._failures > 0
        self._signal.resync = False
        self._fresh = resync  # after an outage, read for ourselves
        try:
            if not self._started:
                self._watch(self._source.event_keys())
                run_ids = self._source.start()
                self._started = True
            else:
                run_ids = self._source.changed(resync)
            items = self._read(run_ids)
        except StoreUnavailableError as exc:
            if self._failures == 0:
                logger.warning("realtime subscription: store unreachable, retrying: %s", exc)
            self._failures += 1
            return []
        self._failures = 0
        return items

    def _read(self, run_ids: Sequence[str]) -> list[Any]:
        source = self._source
        items: list[Any] = []
        final: list[Any] = []
        for record in self._records(run_ids):
            if record is None:
                if isinstance(source, RunSource):
                    self._done = True  # the run is gone (it cannot come back)
                continue
            full = Run.from_record(record)
            if not source.accept(full):
                continue
            version = int(record.get("ev") or 0)
            if version < self._versions.get(full.id, 0):
                continue  # an older read than one already yielded: never go back
            self._versions[full.id] = version
            run = self._view(full)
            update: list[Any] = []
            if self._last.get(run.id) != run:
                self._last[run.id] = run
                update.append(StreamPart("run", run) if self._streams else run)
            streams = [*full.realtime_streams, LOG_STREAM]
            chunks = self._read_chunks(run, streams) if self._streams else []
            if source.stop_on_completion and run.finished_at is not None:
                self._done = True
                final.extend(update + chunks)  # the last chunks are drained, then it ends
            else:
                items.extend(update + chunks)
        if self._streams:  # chunks of runs that did not change (chunks append no event)
            seen = set(run_ids)
            for run in list(self._last.values()):
                if run.id not in seen:
                    items.extend(self._read_chunks(run, self._keys.get(run.id, [])))
        return items + final

    def _view(self, run: Run) -> Run:
        if not self._skip:
            return run
        blank: dict[str, Any] = {name: _BLANK.get(name) for name in self._skip}
        return dataclasses.replace(run, **blank)

    def _records(self, run_ids: Sequence[str]) -> list[dict[str, str] | None]:
        """The records of ``run_ids``; a run subscription's read after a wake-up is shared
        with the process's other subscriptions to that run (``Hub.read``)."""
        source = self._source
        if not run_ids:
            return []
        if isinstance(source, RunSource) and self._shared_reads and not self._fresh:
            return [self._hub.read(source.events_key, source.record)]
        self._shared_reads = True  # the first read is always this subscription's own
        return source.records(run_ids)

    def _read_chunks(self, run: Run, streams: list[str]) -> list[Any]:
        source = self._source
        self._keys[run.id] = streams
        self._watch(source.chunk_key(run.id, k) for k in streams)
        out: list[Any] = []
        for key in streams:
            name = f"{run.id}/{key}"
            position = self._chunks.setdefault(name, STREAM_START)
            for entry_id, entry in source.chunks(run.id, key, position):
                out.append((name, entry_id, _part(key, run, loads(entry.get("d")))))
            # positions advance as items are taken (_take): a cursor never skips an unread chunk
        return out


# constructors used by ``runs`` --------------------------------------------------------------
def _skip_columns(skip_columns: Iterable[str] | None) -> frozenset[str]:
    if skip_columns is None:
        return frozenset()
    if isinstance(skip_columns, str):
        raise TypeError("skip_columns must be a list of column names, not a string")
    names = frozenset(skip_columns)
    unknown = names - RUN_COLUMNS
    if unknown:
        raise ValueError(f"skip_columns: unknown column(s) {', '.join(sorted(unknown))}")
    required = names & {"id", "status", "task_identifier"}
    if required:
        raise ValueError(f"skip_columns: {', '.join(sorted(required))} cannot be skipped")
    return names


def subscribe_run(
    engine: Engine,
    run_id: str,
    *,
    stop_on_completion: bool,
    skip_columns: Iterable[str] | None,
    cursor: str | None,
) -> RunSubscription[Run]:
    skip = _skip_columns(skip_columns)
    source = run_source(engine, run_id, stop_on_completion=stop_on_completion)
    return RunSubscription(source, skip_columns=skip, cursor=cursor)


def subscribe_tags(
    engine: Engine,
    tags: list[str],
    *,
    created_at: Duration,
    skip_columns: Iterable[str] | None,
    cursor: str | None,
) -> RunSubscription[Run]:
    skip = _skip_columns(skip_columns)
    window = to_seconds(created_at, name="created_at")
    if window <= 0 or window > MAX_TAG_WINDOW_S:
        raise ValueError("created_at must be a duration above 0 and at most 1 week")
    return RunSubscription(tag_source(engine, tags, window), skip_columns=skip, cursor=cursor)


def subscribe_batch(
    engine: Engine, batch_id: str, *, skip_columns: Iterable[str] | None, cursor: str | None
) -> RunSubscription[Run]:
    skip = _skip_columns(skip_columns)
    return RunSubscription(batch_source(engine, batch_id), skip_columns=skip, cursor=cursor)


__all__ = ["RunSubscription", "StreamPart"]
