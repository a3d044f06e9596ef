"""Run and batch idempotency keys (SEMANTICS §5).

Invariants: a key names at most one owner; release is compare-and-delete.
"""

from __future__ import annotations

from typing import Protocol


class IdempotencyStore(Protocol):
    """Run and batch idempotency keys (SEMANTICS §5)."""

    def idempotency_owner(self, task_id: str, key: str) -> str | None:
        """The run that owns an idempotency key of a task, or None."""
        ...

    def release_idempotency_key(
        self, task_id: str, key: str, owner: str, *, clear_record: bool
    ) -> bool:
        """Delete the key if ``owner`` still owns it (and clear it from the owner's record)."""
        ...

    def delete_idempotency_key(self, task_id: str, key: str) -> bool:
        """Delete a task's idempotency key whoever owns it; True when it existed."""
        ...

    def get_batch_key(self, key: str) -> str | None:
        """The batch created under a batch idempotency key, or None."""
        ...

    def claim_batch_key(self, key: str, batch_id: str, ttl_ms: int) -> str:
        """``SET NX`` the batch key; return the batch that owns it afterwards."""
        ...
