"""Run statuses (SEMANTICS §4) and the one rule for "completed" (decision D-6).

A final status never changes again. ``is_completed`` means "in the final set" on every
surface (runs.retrieve, runs.list, realtime, runs.poll).
"""

from __future__ import annotations

from enum import Enum


class RunStatus(str, Enum):
    """Public run status; values are the Trigger.dev strings."""

    PENDING_VERSION = "PENDING_VERSION"
    DELAYED = "DELAYED"
    QUEUED = "QUEUED"
    DEQUEUED = "DEQUEUED"
    EXECUTING = "EXECUTING"
    WAITING = "WAITING"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    SYSTEM_FAILURE = "SYSTEM_FAILURE"
    EXPIRED = "EXPIRED"
    TIMED_OUT = "TIMED_OUT"

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        RunStatus.COMPLETED,
        RunStatus.CANCELED,
        RunStatus.FAILED,
        RunStatus.CRASHED,
        RunStatus.SYSTEM_FAILURE,
        RunStatus.EXPIRED,
        RunStatus.TIMED_OUT,
    }
)
FAILED_STATUSES = FINAL_STATUSES - {RunStatus.COMPLETED}
QUEUED_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.DELAYED, RunStatus.PENDING_VERSION})
EXECUTING_STATUSES = frozenset({RunStatus.EXECUTING, RunStatus.DEQUEUED})

__all__ = ["FINAL_STATUSES", "RunStatus"]
