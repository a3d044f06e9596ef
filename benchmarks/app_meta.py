"""celery-trigger benchmark app for the ``meta`` case (what its worker imports with ``-A``).

The same app, engine, queue and tasks as ``app_ct`` (imported from it, so configured by the
same environment), plus ``bench-meta-heavy``: a run that makes ``payload["n"]`` calls of
``ct.metadata.increment``.
"""

from __future__ import annotations

from typing import Any

import celery_trigger as ct
from benchmarks.app_ct import app, engine, noop

__all__ = ["app", "engine", "meta_heavy", "noop"]


@ct.task(id="bench-meta-heavy")
def meta_heavy(payload: dict[str, Any]) -> None:
    for _ in range(payload["n"]):
        ct.metadata.increment("n")
