"""Realtime feeds (DESIGN §7): change events, chunk streams, listeners.

Stream ids are Redis stream ids ("<ms>-<seq>", "0-0" before the first entry); both stores
order them the same way. Every state-changing operation emits its event (``lua/events.lua``)
in the same atomic step: it increments the run's field "ev", publishes on ``Feed.run(run)``,
and appends to (and publishes on) ``Feed.tag(tag)`` for each of the run's tags and
``Feed.batch(batch)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..types import Feed


class Listener(Protocol):
    """Change notifications for one reader (``Store.listener``); one thread uses it."""

    def subscribe(self, feeds: Sequence[Feed]) -> None:
        """Ask for ``feeds``; each is confirmed by a ``("subscribe", feed)`` item."""
        ...

    def unsubscribe(self, feeds: Sequence[Feed]) -> None:
        """Stop ``feeds``; each is confirmed by an ``("unsubscribe", feed)`` item (a
        message published before the confirmation may still arrive)."""
        ...

    def get(self, timeout: float) -> list[tuple[str, Feed]]:
        """Wait up to ``timeout`` seconds for items, then return every one available:
        ``("subscribe", feed)`` and ``("unsubscribe", feed)`` confirmations and
        ``("message", feed)`` notifications, in arrival order ([] on timeout)."""
        ...

    def close(self) -> None:
        """Drop every subscription and the connection."""
        ...


class RealtimeStore(Protocol):
    """Realtime feeds (DESIGN §7): change events, chunk streams, listeners."""

    def stream_tail(self, feed: Feed) -> str:
        """The id of the stream's last entry ("0-0" when it is empty or missing)."""
        ...

    def read_stream(self, feed: Feed, after: str, count: int) -> list[tuple[str, dict[str, str]]]:
        """Up to ``count`` entries strictly after id ``after``, oldest first."""
        ...

    def append_stream(
        self, run_id: str, key: str, writer: str, seq: int, chunks: Sequence[str]
    ) -> tuple[str, int]:
        """``stream_append.lua``: returns ("ok", chunks appended) or ("missing", 0)."""
        ...

    def publish(self, feed: Feed) -> None:
        """Publish an empty message on ``feed`` (wakes a ``listener`` subscribed to it)."""
        ...

    def listener(self) -> Listener:
        """A new subscriber to change notifications. Every stream append of the realtime
        layer is published on its feed; a listener receives those of the feeds it
        subscribed to, from the moment the subscription is
        confirmed. Used by one thread (the hub's)."""
        ...

    def mark_token_used(self, token_id: str, ttl_ms: int) -> bool:
        """Mark a single-use public token (its ``jti``) used for ``ttl_ms``: True the first
        time, False after."""
        ...
