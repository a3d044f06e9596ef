"""The in-memory keyspace behind ``MemoryStore``: the few Redis types and commands it uses.

Each helper behaves like the Redis command it is named after, as seen from a Lua script:
an empty set or sorted set disappears, a string key past its expiry is absent, a number a
script writes reads back as Redis' Lua bridge formats it (Redis 7.0: ``%.17g``).
Not thread-safe on its own: ``MemoryStore`` holds its lock around every use.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ...errors import StoreUnavailableError


def lua_num(value: float) -> str:
    """A number as a Lua script writes it into Redis (Redis 7.0 formats with ``%.17g``)."""
    return format(float(value), ".17g")


def mono_ms() -> float:
    """The clock of key expiry (ms): monotonic, like Redis' own."""
    return time.monotonic() * 1000.0


@dataclass
class MemoryState:
    """The keyspace: one dict per Redis type, keyed by the full key name."""

    hashes: dict[str, dict[str, str]] = field(default_factory=dict)
    zsets: dict[str, dict[str, float]] = field(default_factory=dict)
    lists: dict[str, list[str]] = field(default_factory=dict)
    sets: dict[str, set[str]] = field(default_factory=dict)
    strings: dict[str, tuple[str, float]] = field(default_factory=dict)  # value, expiry (ms)
    #: stream key -> entries (id "<ms>-<seq>", fields), oldest first (events.py)
    streams: dict[str, list[tuple[str, dict[str, str]]]] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        entry = self.strings.get(key)
        if entry is None:
            return None
        if entry[1] <= mono_ms():
            del self.strings[key]
            return None
        return entry[0]

    def delete(self, key: str) -> bool:
        return self.get(key) is not None and self.strings.pop(key, None) is not None

    def hset(self, key: str, fields: dict[str, str]) -> None:
        if not fields:  # Redis rejects an HSET without pairs; keep the two stores alike
            raise StoreUnavailableError("wrong number of arguments for 'hset' command")
        self.hashes.setdefault(key, {}).update(fields)

    def sadd(self, key: str, member: str) -> None:
        self.sets.setdefault(key, set()).add(member)

    def srem(self, key: str, member: str) -> bool:
        members = self.sets.get(key)
        if members is None or member not in members:
            return False
        members.discard(member)
        if not members:
            del self.sets[key]
        return True

    def zadd(self, key: str, member: str, score: float) -> None:
        self.zsets.setdefault(key, {})[member] = float(score)

    def zrem(self, key: str, member: str) -> None:
        zset = self.zsets.get(key)
        if zset is not None:
            zset.pop(member, None)
            if not zset:
                del self.zsets[key]

    def zsorted(self, key: str) -> list[tuple[str, float]]:
        """Members by (score, member) ascending, like ZRANGE."""
        return sorted(self.zsets.get(key, {}).items(), key=lambda row: (row[1], row[0]))

    def zrange_upto(self, key: str, high: float, limit: int) -> list[str]:
        """``ZRANGEBYSCORE key -inf high LIMIT 0 limit`` (a negative limit means all)."""
        rows = [member for member, score in self.zsorted(key) if score <= high]
        return rows if limit < 0 else rows[:limit]


def lua_float(value: str | None) -> float:
    """Lua's ``tonumber(v or "0") or 0``: a missing or unreadable number counts as zero."""
    try:
        return float(value or "0")
    except ValueError:
        return 0.0
