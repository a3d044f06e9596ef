"""MemoryStore: the Store protocol inside one process (embedded mode, users' unit tests).

It mirrors ``RedisStore`` and its Lua scripts operation by operation over a small in-memory
keyspace (``state.MemoryState``) addressed by the same key names (``self.keys``), one mixin
per concern like ``RedisStore`` (``base.py`` holds the keyspace, the lock and shared helpers).
``tests/store/test_contract*.py`` hold the two to the same behaviour.

Invariants:
- every public operation runs under one ``threading.RLock``, so it is atomic like a script
  (a Celery worker thread and the triggering thread share one instance);
- record values are the strings Redis would return: a number a script writes is formatted
  like Redis' Lua bridge (``lua_num``), a number Python passes as an argument with ``str``;
- sorted-set ranges order by (score, member); reversed ranges by (score, member) descending;
- a string key past its expiry (monotonic clock, like ``SET ... PX``) is absent; a key
  without one (wait keys without ttl, token keys without ttl: D-7) expires at ``math.inf``;
- an empty set, list or sorted set is removed, as Redis does (a waiters set that exists
  means "a run is parked on this member");
- records handed to callers are copies; only ``state`` exposes the internal keyspace.
"""

from __future__ import annotations

from .base import MemoryBase
from .durable import MemoryDurable
from .events import MemoryEvents, MemoryListener
from .logs import MemoryLogs
from .metadata import MemoryMeta
from .retention import MemoryRetention
from .runs import MemoryRuns
from .schedules import MemorySchedules
from .slots import MemorySlots
from .state import MemoryState
from .tasks import MemoryTasks
from .timers import MemoryTimers
from .tokens import MemoryTokens


class MemoryStore(
    MemoryRuns,
    MemoryDurable,
    MemoryTokens,
    MemoryMeta,
    MemorySlots,
    MemoryTimers,
    MemorySchedules,
    MemoryLogs,
    MemoryEvents,
    MemoryTasks,
    MemoryRetention,
    MemoryBase,
):
    """Run state in process memory. Example: ``MemoryStore(prefix="ct")``."""


__all__ = ["MemoryListener", "MemoryState", "MemoryStore"]
