"""The part of retention both stores share: which timer a final status arms."""

from __future__ import annotations

from .._vocab import FINAL_VALUES, TimerKind


class RetentionTimer:
    """``_retire_timer`` from ``retention_ms`` (set by ``setup`` from the settings)."""

    retention_ms: int | None = None

    def _retire_timer(self, run_id: str, status: str, now_ms: int) -> list[tuple[str, int]]:
        if self.retention_ms is None or status not in FINAL_VALUES:
            return []
        return [(TimerKind.RETIRE.member(run_id), now_ms + self.retention_ms)]
