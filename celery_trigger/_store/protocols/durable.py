"""Durable execution (DESIGN §4): the attempt's journal, parking at a wait, waking.

Invariants: a journal entry ``k`` is written once, only under the lease; a parked run is
woken once per wait (``notify`` / ``wake`` are idempotent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..types import Record


class DurableStore(Protocol):
    """Durable execution (DESIGN §4): the attempt's journal, parking at a wait, waking."""

    def journal(self, run_id: str) -> list[str]:
        """The current attempt's journal: one JSON entry per durable operation, in order."""
        ...

    def journal_append(self, run_id: str, token: str, k: int, entry: str) -> int:
        """Append entry ``k`` if the journal has exactly k entries; -1 without the lease."""
        ...

    def park(
        self,
        run_id: str,
        token: str,
        now_ms: int,
        k: int,
        entry: str,
        *,
        due_ms: int | None,
        members: Sequence[str],
        fields: dict[str, str],
    ) -> str:
        """End the attempt at wait ``k``: ``parked``, ``ready`` (nothing to wait) or ``lost``."""
        ...

    def waiters(self, member: str) -> list[str]:
        """The ``<run>|<k>`` tags of runs parked on a run id or ``token:<id>``."""
        ...

    def notify(self, waiter: str, member: str, now_ms: int, safety_ms: int) -> bool:
        """``member`` resolved: True when it was the waiter's last one and this woke it."""
        ...

    def wake(self, run_id: str) -> Record | None:
        """Mark a WAITING run woken (resumable) and return it; None for any other status."""
        ...

    def wait_key(self, key: str, due_ms: int, ttl_ms: int | None) -> int:
        """The wake-up time first stored under a wait idempotency key (``SET NX``)."""
        ...
