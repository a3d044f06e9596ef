"""Realtime feeds on Redis (``RealtimeStore``): streams (XRANGE), pub/sub listeners,
``stream_append.lua``, single-use token marks. A ``Feed`` maps to its key with
``types.feed_key``; ``RedisListener`` maps channels back to the feeds it subscribed to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from ..._keys import Keys
from ..types import (
    Feed,
    feed_key,
)
from .client import RedisBase, wrap_errors


class RedisRealtime(RedisBase):
    """Realtime feeds on Redis (``RealtimeStore``): streams (XRANGE), pub/sub listeners,"""

    def stream_tail(self, feed: Feed) -> str:
        last = self._client.xrevrange(feed_key(self.keys, feed), "+", "-", count=1)
        return str(last[0][0]) if last else "0-0"

    def read_stream(self, feed: Feed, after: str, count: int) -> list[tuple[str, dict[str, str]]]:
        if count <= 0:
            return []
        rows = self._client.xrange(feed_key(self.keys, feed), f"({after}", "+", count)
        return [(str(i), dict(f)) for i, f in rows]

    def append_stream(
        self, run_id: str, key: str, writer: str, seq: int, chunks: Sequence[str]
    ) -> tuple[str, int]:
        status, added = self._evalrun(
            "stream_append",
            run_id,
            [self.keys.run(run_id), self.keys.run_stream(run_id, key)],
            [key, writer, seq, *chunks],
        )
        return str(status), int(added)

    def publish(self, feed: Feed) -> None:
        self._client.publish(feed_key(self.keys, feed), "")

    def listener(self) -> RedisListener:
        return RedisListener(self._client, self.keys)

    def mark_token_used(self, token_id: str, ttl_ms: int) -> bool:
        key = self.keys.token_use(token_id)
        return bool(self._client.set(key, "1", nx=True, px=max(1, ttl_ms)))


@wrap_errors
class RedisListener:
    """``Listener`` on a Redis pub/sub connection of its own (redis-py ``PubSub``)."""

    def __init__(self, client: Any, keys: Keys) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=False)
        self._keys = keys
        # channel -> feed, from the subscribe call until its unsubscribe is confirmed
        self._feeds: dict[str, Feed] = {}

    def subscribe(self, feeds: Sequence[Feed]) -> None:
        if feeds:
            channels = {feed_key(self._keys, feed): feed for feed in feeds}
            self._feeds.update(channels)
            self._pubsub.subscribe(*channels)

    def unsubscribe(self, feeds: Sequence[Feed]) -> None:
        if feeds:
            self._pubsub.unsubscribe(*(feed_key(self._keys, feed) for feed in feeds))

    def get(self, timeout: float) -> list[tuple[str, Feed]]:
        out: list[tuple[str, Feed]] = []
        message = self._pubsub.get_message(timeout=timeout)
        while message is not None:
            kind, channel = str(message["type"]), str(message["channel"])
            feed = self._feeds.get(channel)
            if feed is not None and kind in ("subscribe", "unsubscribe", "message"):
                out.append((kind, feed))
                if kind == "unsubscribe" and channel not in self._pubsub.channels:
                    del self._feeds[channel]
            message = self._pubsub.get_message(timeout=0)
        return out

    def close(self) -> None:
        try:
            self._pubsub.close()
        except redis.RedisError:  # closing a broken connection: nothing left to release
            pass
