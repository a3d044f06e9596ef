"""Realtime streams written from inside a run (``metadata.stream``, SEMANTICS §12.1).

Each item the caller's iterable produces is appended, as JSON, to the stream ``key`` of the
target run (itself, its parent or its root: the same targets as metadata) and handed back to
the caller, in order. The first chunk of a key registers it in the run's ``streams`` list and
announces it to subscribers (``lua/stream_append.lua``).

Durable replay: a resumed attempt runs its code again from the top, so it produces the chunks
it produced before its wait once more. They are not appended twice: while the journal replays,
chunks are only counted; and every chunk carries ``(writer, sequence number)`` with writer
``<run id>:<attempt>``, so the script skips numbers it has already stored for that writer even
if a crash fell between an append and the journal entry that follows it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any, TypeVar

from .._serialization import dumps
from . import metadata as _meta
from .engine import current
from .state import RunState, current_state

T = TypeVar("T")

MAX_KEY_LENGTH = 128
#: Stream keys with this prefix are celery-trigger's own (the run log, ``$log``).
RESERVED_PREFIX = "$"


def check_key(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError("stream key must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"stream key must be at most {MAX_KEY_LENGTH} characters")
    if key.startswith(RESERVED_PREFIX):
        raise ValueError(
            f"stream keys starting with {RESERVED_PREFIX!r} are celery-trigger's own "
            "(the run's log is '$log')"
        )
    return key


class _Writer:
    """Appends one stream's chunks for the current attempt (None outside a run)."""

    def __init__(self, state: RunState | None, target: str, key: str) -> None:
        self.state = state
        self.key = key
        if state is None:
            return
        self.engine = current()
        self.run_id = {
            "self": state.run_id,
            "parent": state.record.get("parent") or state.run_id,
            "root": state.root_id or state.run_id,
        }[target]
        self.writer = f"{state.run_id}:{state.attempt}"
        self.counters = state.stream_seq
        self.limit = int(self.engine.settings.max_payload_bytes)

    def write(self, item: Any) -> None:
        state = self.state
        if state is None:
            return  # outside a run: a plain pass-through, like the metadata mutators
        text = dumps(item, what="stream chunk")
        if len(text.encode("utf-8")) > self.limit:
            raise ValueError(
                f"stream chunk is {len(text.encode('utf-8'))} bytes, above "
                f"trigger_max_payload_bytes ({self.limit})"
            )
        slot = (self.run_id, self.key)
        seq = self.counters.get(slot, 0)
        self.counters[slot] = seq + 1
        if _meta.replaying(state):
            return  # appended before the attempt parked
        self.engine.store.append_stream(self.run_id, self.key, self.writer, seq, [text])


def stream_sync(target: str, key: str, source: Iterable[T]) -> Iterator[T]:
    writer = _Writer(current_state(), target, key)
    for item in source:
        writer.write(item)
        yield item


async def stream_async(target: str, key: str, source: AsyncIterable[T]) -> AsyncIterator[T]:
    writer = _Writer(current_state(), target, key)
    async for item in source:
        writer.write(item)
        yield item


def stream(target: str, key: str, source: Any) -> Any:
    """``metadata.stream``: the same items back, sync or async like ``source``."""
    check_key(key)
    if isinstance(source, AsyncIterable):
        return stream_async(target, key, source)
    if isinstance(source, Iterable) and not isinstance(source, (str, bytes, dict)):
        return stream_sync(target, key, source)
    raise TypeError("metadata.stream needs an iterable or an async iterable (not a str or dict)")
