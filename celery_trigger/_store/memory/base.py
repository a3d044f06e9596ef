"""The keyspace, lock and shared helpers of every ``MemoryStore`` mixin (the store's
invariants are listed in ``memory/__init__.py``)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..._keys import Keys
from ..._vocab import (
    RunStatus,
    TimerKind,
)
from ..types import (
    BrokerDelivery,
    IdempotencyKey,
    Record,
    ServerLocation,
)

if TYPE_CHECKING:
    from .events import MemoryListener
from .state import MemoryState


class MemoryBase:
    """The keyspace, the lock and the helpers the concern mixins share."""

    def __init__(self, *, prefix: str = "ct") -> None:
        #: the key names this store uses (tests; not part of ``Store``)
        self.keys = Keys(prefix)
        self._state = MemoryState()
        self._lock = threading.RLock()
        self._listeners: set[MemoryListener] = set()

    def _drop_timers(self, members: Sequence[str]) -> None:
        for member in members:
            self._state.zrem(self.keys.timers(), member)

    def _lease_timer(self, record: Record, due_ms: int | None) -> None:
        """Arm (``due_ms``) or disarm (None) ``lease|<id>``, the dead-worker check."""
        if due_ms is None:
            self._state.zrem(self.keys.timers(), TimerKind.LEASE.member(record.get("id") or ""))
        else:
            self._state.zadd(
                self.keys.timers(), TimerKind.LEASE.member(record.get("id") or ""), due_ms
            )

    def _holds(self, run_id: str, token: str) -> bool:
        """The run is executing under ``token`` (the check every lease-guarded script makes)."""
        record = self._state.hashes.get(self.keys.run(run_id))
        return (
            record is not None
            and record.get("status") == RunStatus.EXECUTING.value
            and record.get("lease") == token
        )

    def _idem_name(self, key: IdempotencyKey | None) -> str:
        """The key name of a run idempotency key ("" for none)."""
        return self.keys.idempotency(key.task_id, key.key) if key else ""

    def _notify_timer(self, run_id: str, owner_id: str | None, now_ms: int) -> bool:
        """A run reached a final status: if runs are parked on it, schedule the safety net."""
        if self._state.sets.get(self.keys.waiters(run_id)):
            self._state.zadd(
                self.keys.timers(), TimerKind.NOTIFY.member(owner_id or ""), now_ms + 5000
            )
            return True
        return False

    def _page(self, key: str, before: tuple[int, str] | None, count: int) -> list[tuple[str, int]]:
        """Newest-first page of a creation-time index, strictly after the cursor."""
        out: list[tuple[str, int]] = []
        for member, score in reversed(self._state.zsorted(key)):
            if len(out) >= count:
                break
            ms = int(score)
            if before is None or ms < before[0] or (ms == before[0] and member < before[1]):
                out.append((member, ms))
        return out

    def _hash_copy(self, key: str) -> Record | None:
        record = self._state.hashes.get(key)
        return None if record is None else dict(record)

    @property
    def state(self) -> MemoryState:
        """The in-memory keyspace (tests inspect it; not part of ``Store``)."""
        return self._state

    def location(self) -> ServerLocation | None:
        return None

    def enqueue(self, delivery: BrokerDelivery, *, front: bool = False) -> None:
        """No broker shares this store: the caller publishes through Celery (``location`` is
        None, so the direct-enqueue path is never enabled)."""
        raise NotImplementedError("MemoryStore has no broker queues")

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass
