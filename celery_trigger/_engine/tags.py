"""Adding tags to a run that exists (SEMANTICS §9, D-14).

One store call adds the tags the run does not have yet, atomically with the limit check:
when the new ones would take the run past ``MAX_TAGS``, none is added and an error is logged
(the caller returns normally, as upstream). Tags arrive here already normalised (types,
lengths, blanks and duplicates are the public module's concern).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..options import MAX_TAGS
from .engine import Engine

logger = logging.getLogger("celery_trigger")

#: What ``Store.add_tags`` answers when the tags would exceed the limit.
LIMIT_REACHED = "limit"


def add(engine: Engine, run_id: str, tags: Sequence[str]) -> None:
    """Add ``tags`` to run ``run_id``; past the limit, log an error and add none."""
    status, stored = engine.store.add_tags(run_id, tags, MAX_TAGS)
    if status == LIMIT_REACHED:
        new = [t for t in tags if t not in stored]
        logger.error(
            "celery-trigger: run %s cannot have more than %d tags: it has %d and "
            "tags.add(%r) would add %d; no tag was added",
            run_id,
            MAX_TAGS,
            len(stored),
            tags,
            len(new),
        )
