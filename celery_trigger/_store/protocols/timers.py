"""The timer set (DESIGN §5): every future wake-up, claimed under a lease.

Invariants: a timer member is handed to one claimer at a time and comes back if its claim
lapses; members are ``TimerKind.member(target)`` (``_vocab.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


class TimerStore(Protocol):
    """The timer set (DESIGN §5): every future wake-up, claimed under a lease."""

    #: True when adding a member that becomes the earliest one and is due within 3 s
    #: publishes on ``Feed.timers()`` (so a timer service may sleep until the earliest due).
    wakes_timers: bool

    def add_timers(self, timers: Sequence[tuple[str, int]]) -> None:
        """Set the due time (ms) of each member, adding or moving it."""
        ...

    def claim_timers(self, now_ms: int, limit: int, lease_ms: int) -> list[str]:
        """Hand out up to ``limit`` due members under a claim lease (lapsed claims return)."""
        ...

    def ack_timers(self, members: Sequence[str]) -> None:
        """End the claims of handled members (they never come back)."""
        ...

    def next_timer_due(self) -> int | None:
        """The earliest due time (ms) of a pending member or of a claim's lease (when a
        lapsed claim comes back), or None when there is neither."""
        ...

    def timer_due(self, member: str) -> int | None:
        """A pending member's due time (ms), or None."""
        ...

    def remove_timers(self, members: Sequence[str]) -> None:
        """Drop timer members that are no longer needed (not claimed ones)."""
        ...

    def timer_stats(self, now_ms: int) -> tuple[int, int | None]:
        """``(due members not yet claimed, due time (ms) of the earliest of them or None)``:
        what the timer-lateness gauges report."""
        ...
