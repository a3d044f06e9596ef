"""The Store protocol: every operation the engine performs on run state.

A record is a flat ``dict[str, str]`` (the Redis hash as stored). Each operation is atomic:
``RedisStore`` runs it as one Lua script (or one pipeline of them), ``MemoryStore`` under
one lock. Both must pass ``tests/store/test_contract.py``.

Invariants every implementation keeps:
- a run record is created once; an idempotency key names at most one owner run;
- ``claim_attempt`` gives at most one live lease per run; a final status never changes;
- ``finish_attempt`` writes only while the caller still holds the lease;
- a timer member is handed to one claimer at a time and comes back if its claim lapses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from .._keys import Keys

Record = dict[str, str]


@dataclass
class NewRun:
    """Everything ``create_runs`` writes for one run."""

    run_id: str
    task_id: str
    fields: dict[str, str]
    tags: list[str] = field(default_factory=list)
    timers: list[tuple[str, int]] = field(default_factory=list)
    idempotency_key: str | None = None
    idempotency_ttl_ms: int = 0
    replace_owner: str | None = None
    parent_id: str | None = None
    pending_version: bool = False
    #: ``(broker list key, message)`` pushed atomically with the record (Redis broker on the
    #: store's own server only; other stores ignore it and the caller publishes instead).
    enqueue: tuple[str, str] | None = None


@dataclass(frozen=True)
class Created:
    run_id: str
    cached: bool


@dataclass(frozen=True)
class Claim:
    """Outcome of ``claim_attempt``: ``action`` is ``ok``, ``drop`` or ``missing``."""

    action: str
    reason: str = ""
    record: Record | None = None


@dataclass(frozen=True)
class Transition:
    ok: bool
    status: str
    record: Record | None = None


class Store(Protocol):
    """Atomic operations on runs, timers, queues, task definitions and durable waits."""

    keys: Keys  # the key names both stores address their state by

    # runs -----------------------------------------------------------------------------
    def create_runs(self, runs: Sequence[NewRun], now_ms: int) -> list[Created]: ...

    def get_run(self, run_id: str) -> Record | None: ...

    def get_runs(self, run_ids: Sequence[str]) -> list[Record | None]: ...

    def children(self, run_id: str) -> list[str]: ...

    def claim_attempt(self, run_id: str, token: str, now_ms: int, lease_ms: int, mode: str,
                      drop_timers: Sequence[str]) -> Claim: ...

    def renew_leases(self, leases: Sequence[tuple[str, str]], now_ms: int,
                     lease_ms: int) -> list[str]:
        """Extend each lease still held; return the run ids whose lease was lost."""
        ...

    def finish_attempt(self, run_id: str, token: str, status: str, now_ms: int, *,
                       fields: dict[str, str], timers: Sequence[tuple[str, int]] = (),
                       idempotency_key: str | None = None,
                       release_key: bool = False) -> bool: ...

    def transition(self, run_id: str, now_ms: int, *, allowed: str, status: str = "",
                   remove_timers: Sequence[str] = (), add_timers: Sequence[tuple[str, int]] = (),
                   fields: dict[str, str] | None = None,
                   remove_from: str | None = None) -> Transition: ...

    def list_run_ids(self, *, index: str | None, before: tuple[int, str] | None,
                     count: int) -> list[tuple[str, int]]: ...

    def delete_idempotency_key(self, task_id: str, key: str) -> bool: ...

    # durable execution (DESIGN §4) ---------------------------------------------------------
    def journal(self, run_id: str) -> list[str]:
        """The current attempt's journal: one JSON entry per durable operation, in order."""
        ...

    def journal_append(self, run_id: str, token: str, k: int, entry: str) -> int:
        """Append entry ``k`` if the journal has exactly k entries; -1 without the lease."""
        ...

    def park(self, run_id: str, token: str, now_ms: int, k: int, entry: str, *,
             due_ms: int | None, members: Sequence[str], fields: dict[str, str]) -> str:
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

    def create_token(self, token_id: str, now_ms: int, *, key: str | None, key_ttl_ms: int,
                     timeout_ms: int | None, fields: dict[str, str],
                     tags: Sequence[str]) -> Created:
        """Create a waitpoint token, or return the live owner of its idempotency key."""
        ...

    def get_token(self, token_id: str) -> Record | None:
        """The token record, or None."""
        ...

    def complete_token(self, token_id: str, now_ms: int, status: str, field: str,
                       value: str) -> tuple[str, list[str]]:
        """First completion wins: (``ok``, waiters) | (``done``, []) | (``missing``, [])."""
        ...

    def list_token_ids(self, *, tag: str | None, before: tuple[int, str] | None,
                       count: int) -> list[tuple[str, int]]:
        """Newest-first ``(token id, created ms)`` page strictly after the cursor."""
        ...

    # timers ---------------------------------------------------------------------------
    def add_timers(self, timers: Sequence[tuple[str, int]]) -> None: ...

    def claim_timers(self, now_ms: int, limit: int, lease_ms: int) -> list[str]: ...

    def ack_timers(self, members: Sequence[str]) -> None: ...

    def timer_due(self, member: str) -> int | None: ...

    def remove_timers(self, members: Sequence[str]) -> None:
        """Drop timer members that are no longer needed (not claimed ones)."""
        ...

    # batches, queues, task definitions ------------------------------------------------
    def put_batch(self, batch_id: str, fields: dict[str, str]) -> None: ...

    def get_batch(self, batch_id: str) -> Record | None: ...

    def put_queue(self, name: str, fields: dict[str, str]) -> None: ...

    def get_queue(self, name: str) -> Record | None: ...

    def put_task_defs(self, defs: dict[str, str]) -> None: ...

    def get_task_def(self, task_id: str) -> str | None: ...

    def pending_runs(self, task_id: str, limit: int) -> list[str]: ...

    # housekeeping -----------------------------------------------------------------------
    def ping(self) -> bool: ...

    def close(self) -> None: ...

    def raw(self) -> Any:
        """The underlying client (tests and benchmarks only)."""
        ...
