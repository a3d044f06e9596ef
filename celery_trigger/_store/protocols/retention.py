"""Retention (``trigger_run_retention``): a final run's keys are deleted that long after it
ended, by the timer service (a ``retire`` timer armed when the run became final), never by a
keyspace scan. A live run is never touched."""

from __future__ import annotations

from typing import Protocol


class RetentionStore(Protocol):
    #: how long a final run is kept (ms); ``None`` keeps runs forever
    retention_ms: int | None

    def retire_run(self, run_id: str) -> bool:
        """Delete a final run's record, children, journal, waiters, streams and index entries;
        its batch expires ``retention_ms`` later. False (nothing changed) for a live or
        missing run."""
        ...
