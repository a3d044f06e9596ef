"""Run statuses (SEMANTICS §4) and the one rule for "completed" (decision D-6).

A final status never changes again. ``is_completed`` means "in the final set" on every
surface (runs.retrieve, runs.list, realtime, runs.poll). The values are defined once, in
the engine's vocabulary (``_vocab.py``); this module is their public home.
"""

from __future__ import annotations

from ._vocab import (
    EXECUTING_STATUSES,
    FAILED_STATUSES,
    FINAL_STATUSES,
    QUEUED_STATUSES,
    RunStatus,
)

__all__ = [
    "EXECUTING_STATUSES",
    "FAILED_STATUSES",
    "FINAL_STATUSES",
    "QUEUED_STATUSES",
    "RunStatus",
]
