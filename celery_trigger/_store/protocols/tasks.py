"""Stored task definitions (the 'deployed' tasks) and runs pending a version.

Invariants: a run of an unknown task waits in its task's pending set until a worker that
defines the task releases it (``transition(pending_task=...)``).
"""

from __future__ import annotations

from typing import Protocol


class TaskStore(Protocol):
    """Stored task definitions (the 'deployed' tasks) and runs pending a version."""

    def put_task_defs(self, defs: dict[str, str]) -> None:
        """Store task definitions (task id -> JSON of its defaults)."""
        ...

    def get_task_def(self, task_id: str) -> str | None:
        """A stored task definition (JSON), or None."""
        ...

    def pending_runs(self, task_id: str, limit: int) -> list[str]:
        """Up to ``limit`` runs waiting for a worker that defines the task, oldest first."""
        ...
