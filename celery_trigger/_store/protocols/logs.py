"""The run's own log (SEMANTICS §14): records ``logger.*`` wrote during the run's attempts.

A run's log is an append-only sequence of JSON entries (``LogEntry`` as text), oldest first,
with ids ordered like the realtime streams ("<ms>-<seq>"), so a realtime reader follows it
with ``read_stream(Feed.logs(run_id), after, count)``. It is capped per run by entry count and
by total bytes: an append that goes over either drops the oldest entries and counts them
(``dropped``), so readers can say that earlier entries are missing. An append publishes on
``Feed.logs(run_id)`` (wakes subscribers) and pushes the log's expiry ``ttl_ms`` ahead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class LogStore(Protocol):
    """The run's own log (``logger.*``), capped per run by count and bytes."""

    def append_logs(
        self, run_id: str, entries: Sequence[str], *, max_count: int, max_bytes: int, ttl_ms: int
    ) -> int:
        """``log_append.lua``: append ``entries`` (JSON text) to the run's log, then drop the
        oldest entries while more than ``max_count`` are kept or they hold more than
        ``max_bytes`` bytes. Returns how many entries this call dropped."""
        ...

    def read_logs(self, run_id: str, limit: int) -> tuple[int, list[tuple[str, str]]]:
        """The newest ``limit`` entries as (id, JSON text), oldest first, and how many
        entries were dropped from this log over its life (0 when none or no log)."""
        ...
