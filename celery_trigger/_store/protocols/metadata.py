"""Run metadata documents and tags (SEMANTICS §8, §9).

Invariants: each update applies atomically to one run's document within the size limit;
tags are added all or none, up to the limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..types import MetaResult, MetaUpdate


class MetadataStore(Protocol):
    """Run metadata documents and tags (SEMANTICS §8, §9)."""

    def apply_metadata(
        self, updates: Sequence[MetaUpdate], now_ms: int, *, max_bytes: int
    ) -> list[MetaResult]:
        """Apply each update to its run's ``meta`` document atomically (one script each)."""
        ...

    def add_tags(self, run_id: str, tags: Sequence[str], max_tags: int) -> tuple[str, list[str]]:
        """Add the tags missing from the run, all or none: (``ok``|``limit``|``missing``, tags)."""
        ...
