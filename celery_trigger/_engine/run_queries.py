"""Reading runs from outside them: one run by id, and filtered pages of runs (SEMANTICS §11).

Invariants:
- a page lists runs newest first from the store's run index (a tag's own index when the
  filter names exactly one tag), filtering each record here; a run whose record is gone
  (expired between the index read and the record read) is skipped;
- a page's cursor is the position of its last run, and a page reports a next page only when
  one more matching run exists, so iteration never ends on an empty page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .._vocab import RunStatus
from ..errors import RunNotFoundError
from ..result import Run
from .engine import Engine

#: A position in the run index: ``(created ms, run id)`` of the last run read.
Cursor = tuple[int, str]


@dataclass(frozen=True)
class RunFilter:
    """What ``runs.list`` keeps: an empty set or None matches everything; ``tags`` matches a
    run carrying any one of them; ``created_from``/``created_to`` are inclusive bounds."""

    status: frozenset[RunStatus]
    task_identifier: frozenset[str]
    tags: tuple[str, ...]
    batch: str | None
    created_from: datetime | None
    created_to: datetime | None

    def matches(self, run: Run) -> bool:
        if self.status and run.status not in self.status:
            return False
        if self.task_identifier and run.task_identifier not in self.task_identifier:
            return False
        if self.tags and not set(self.tags) & set(run.tags):
            return False
        if self.batch and run.batch_id != self.batch:
            return False
        created = run.created_at
        if self.created_from is not None and (created is None or created < self.created_from):
            return False
        return not (self.created_to is not None and (created is None or created > self.created_to))


def find(engine: Engine, run_id: str) -> Run | None:
    """The run's current state (without its children), or None for an unknown id."""
    record = engine.store.get_run(run_id)
    return None if record is None else Run.from_record(record)


def retrieve(engine: Engine, run_id: str) -> Run:
    """The run's current state with its children; ``RunNotFoundError`` for an unknown id."""
    record = engine.store.get_run(run_id)
    if record is None:
        raise RunNotFoundError(f"no run with id {run_id!r}")
    return Run.from_record(record, engine.store.children(run_id))


def page(
    engine: Engine, f: RunFilter, limit: int, cursor: Cursor | None
) -> tuple[list[Run], Cursor | None]:
    """Up to ``limit`` matching runs after ``cursor``, and the cursor of the next page (None
    when there is none)."""
    index = f.tags[0] if len(f.tags) == 1 else None
    found: list[Run] = []
    last = cursor  # position of the last run on this page: the next page starts after it
    while True:
        ids = engine.store.list_run_ids(index=index, before=cursor, count=limit * 2)
        if not ids:
            return found, None
        records = engine.store.get_runs([i for i, _ in ids])
        for (run_id, score), record in zip(ids, records, strict=True):
            cursor = (score, run_id)
            if record is None:
                continue
            run = Run.from_record(record)
            if f.matches(run):
                if len(found) == limit:
                    # One more match exists, so a next page does (no trailing empty page).
                    return found, last
                found.append(run)
                last = cursor
