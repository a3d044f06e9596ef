"""Stored task definitions (the 'deployed' tasks) and runs pending a version.

Invariants: a run of an unknown task waits in its task's pending set until a worker that
defines the task releases it (``transition(pending_task=...)``).
"""

from __future__ import annotations

from typing import Protocol


class TaskStore(Protocol):
    """Stored task definitions (the 'deployed' tasks) and runs pending a version."""

    def put_task_defs(self, defs: dict[str, str]) -> None: ...

    def get_task_def(self, task_id: str) -> str | None: ...

    def pending_runs(self, task_id: str, limit: int) -> list[str]: ...
