"""Schedules (DESIGN §8) and their occurrence timer.

Invariants: a schedule has one ``sched|<id>`` timer; ``advance_schedule`` is a
compare-and-set on ``next_run``, so an occurrence is handled once.
"""

from __future__ import annotations

from typing import Protocol

from ..types import Record


class ScheduleStore(Protocol):
    """Schedules (DESIGN §8) and their occurrence timer."""

    def put_schedule(
        self,
        schedule_id: str,
        now_ms: int,
        *,
        mode: str,
        require_type: str,
        create_fields: dict[str, str],
        fields: dict[str, str],
        next_run: tuple[int, int] | None,
    ) -> tuple[str, Record | None]:
        """Create (``mode="upsert"``) or change a schedule and arm its ``sched|<id>`` timer.

        ``create_fields`` are written only when the schedule is new; an empty value in
        ``fields`` deletes that field. ``next_run`` is ``(nominal ms, wall due ms)``, applied
        when the schedule is new or its cron or timezone changed. Returns
        ``("created"|"updated", record)``, ``("missing", None)`` (``mode="update"``) or
        ``("type", {"type": existing})`` when ``require_type`` does not match.
        """
        ...

    def get_schedule(self, schedule_id: str) -> Record | None:
        """The schedule record, or None."""
        ...

    def list_schedules(self, offset: int, count: int) -> tuple[list[Record], int]:
        """Schedules in creation order from ``offset``, and how many exist in all."""
        ...

    def delete_schedule(self, schedule_id: str, *, require_type: str) -> str:
        """Remove a schedule and its pending timer: ``ok``, ``missing`` or ``type``."""
        ...

    def advance_schedule(
        self,
        schedule_id: str,
        *,
        expected_ms: int,
        next_ms: int,
        due_ms: int,
        last_ms: int | None,
        now_ms: int,
    ) -> bool:
        """Compare-and-set ``next_run`` from ``expected_ms`` to ``next_ms``, record
        ``last_run`` when the occurrence was triggered, arm the timer at ``due_ms``."""
        ...
