"""Run records: create, read, claim under a lease, finish, transition, list.

Invariants: a run record is created once (an idempotency key names at most one owner run);
``claim_attempt`` gives at most one live lease per run, and a final status never changes;
``finish_attempt`` writes only while the caller still holds the lease. Every change emits
the run's realtime event in the same atomic step (``protocols/realtime.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..types import (
    BrokerDelivery,
    Claim,
    Created,
    IdempotencyKey,
    NewBatch,
    NewRun,
    Record,
    SlotScope,
    Transition,
)


class RunStore(Protocol):
    """Run records: create, read, claim under a lease, finish, transition, list."""

    def create_runs(
        self, runs: Sequence[NewRun], now_ms: int, *, batch: NewBatch | None = None
    ) -> list[Created]:
        """Create runs in order, honouring idempotency keys: each new run or its key's owner.
        With ``batch``, its record (``runs`` = the resolved ids) is written in the same
        transaction: the runs never exist without it, even when one create fails."""
        ...

    def get_run(self, run_id: str) -> Record | None:
        """The run record, or None."""
        ...

    def get_runs(self, run_ids: Sequence[str]) -> list[Record | None]:
        """The records of ``run_ids`` in order (None for a missing run)."""
        ...

    def children(self, run_id: str) -> list[str]:
        """Child run ids in trigger order."""
        ...

    def claim_attempt(
        self,
        run_id: str,
        token: str,
        now_ms: int,
        lease_ms: int,
        mode: str,
        drop_timers: Sequence[str],
        *,
        scope: SlotScope | None = None,
    ) -> Claim:
        """Take the run for an attempt (and a slot of its queue when that queue is limited).

        Over the limit: ``Claim("drop", "queued")``, the run waits in its sub-queue.
        """
        ...

    def renew_leases(
        self, leases: Sequence[tuple[str, str]], now_ms: int, lease_ms: int
    ) -> list[str]:
        """Extend each lease still held (and the run's slot); return the run ids whose lease
        was lost, or whose slot lapsed and was reaped."""
        ...

    def finish_attempt(
        self,
        run_id: str,
        token: str,
        status: str,
        now_ms: int,
        *,
        fields: dict[str, str],
        timers: Sequence[tuple[str, int]] = (),
        idempotency_key: IdempotencyKey | None = None,
        release_key: bool = False,
    ) -> int:
        """Write the attempt's outcome while ``token`` holds the lease: 0 (lease lost), 1, or
        2 (final, runs are parked on it). ``release_key``: drop ``idempotency_key`` if the
        run still owns it."""
        ...

    def transition(
        self,
        run_id: str,
        now_ms: int,
        *,
        allowed: str,
        status: str = "",
        remove_timers: Sequence[str] = (),
        add_timers: Sequence[tuple[str, int]] = (),
        fields: dict[str, str] | None = None,
        pending_task: str | None = None,
    ) -> Transition:
        """Move a run not executing from an ``allowed`` status (comma separated, ``*`` = any
        non-final) to ``status``; ``pending_task``: the run leaves that task's
        pending-version set."""
        ...

    def list_run_ids(
        self, *, index: str | None, before: tuple[int, str] | None, count: int
    ) -> list[tuple[str, int]]:
        """Newest-first ``(run id, created ms)`` page of all runs or of a tag, after the cursor."""
        ...

    def put_batch(self, batch_id: str, fields: dict[str, str]) -> None:
        """Write (merge) a batch record."""
        ...

    def get_batch(self, batch_id: str) -> Record | None:
        """The batch record, or None."""
        ...

    def enqueue(self, delivery: BrokerDelivery, *, front: bool = False) -> None:
        """Push a Celery message onto a broker queue on this store's server (only when
        ``location`` matches the broker's); ``front``: the queue's next message."""
        ...
