"""Queues and their concurrency slots (DESIGN §6).

Invariants: a run executes under a queue limit only while it holds one of the queue's slots,
taken in the same atomic step as the claim; no (sub-)queue ever has more live slots than its
limit; a lapsed slot is reaped and its place handed on.
"""

from __future__ import annotations

from typing import Protocol

from ..types import Record, SlotScope


class SlotStore(Protocol):
    """Queues and their concurrency slots (DESIGN §6)."""

    def put_queue(self, name: str, fields: dict[str, str]) -> None:
        """Write (merge) a queue's settings and list it in ``queue_names``."""
        ...

    def get_queue(self, name: str) -> Record | None:
        """A queue's settings, or None."""
        ...

    def release_slot(
        self, run_id: str | None, scope: SlotScope, now_ms: int, handoff_ms: int, delay_ms: int
    ) -> list[str]:
        """Give back the run's slot or place in line (unless it is EXECUTING again), then
        admit waiting runs; returns the promoted run ids (each holds a slot for
        ``handoff_ms`` and has ``promote|<run>`` due after ``delay_ms``)."""
        ...

    def reap_slots(self, now_ms: int) -> int:
        """Drop slots whose lease lapsed (``pump|<sub>`` for each); re-arm ``reap|slots``."""
        ...

    def queue_usage(self, name: str, now_ms: int) -> tuple[int, int]:
        """``(running, queued)`` of a queue: runs holding its slots, runs waiting for one."""
        ...

    def queue_subqueues(self, name: str) -> list[str]:
        """Ids of the queue's sub-queues that have waiting runs."""
        ...

    def subqueue_waiting(self, name: str) -> dict[str, int]:
        """Sub-queue id -> runs waiting in its line, for the queue's sub-queues with waiting
        runs (one per concurrency key in use; the metrics' queued-per-key gauge)."""
        ...

    def queue_names(self) -> list[str]:
        """Every queue ``put_queue`` has stored."""
        ...
