"""Deliveries after store data loss (a failover to a stale replica, a restore, a flush).

Invariants:
- a message celery-trigger published (header ``ct_run``) always had its run record written
  first, so when the record is gone the message is dropped with an error log and the
  ``missing_record`` counter, never recreated from its arguments and run (its payload may
  not even be in the message). A plain Celery send from a process without ``setup`` has no
  ``ct_run`` header and still becomes a run at the worker (``create_from_message``);
- a worker that claims a run of a code-defined queue first makes sure the queue's
  definition (its concurrency limit) is stored, so a limit lost with the store's data is
  back before the claim that would need it.
"""

from __future__ import annotations

import logging
import time

from . import concurrency
from .engine import Engine
from .outage import MISSING_RECORD, count
from .registry import TaskSpec

logger = logging.getLogger("celery_trigger")


def report_missing(run_id: str, task_id: str) -> None:
    """The record of a run celery-trigger published is gone: log and count the drop."""
    count(MISSING_RECORD)
    logger.error(
        "celery-trigger: run %s (task %s) has no record (store data lost?); "
        "dropping its message instead of running it without its payload",
        run_id,
        task_id,
    )


#: How often one process re-checks that a code-defined queue is still stored (s).
QUEUE_CHECK_S = 1.0
#: (engine, queue name) -> monotonic time of the next check
_checked: dict[tuple[int, str], float] = {}


def ensure_queue(engine: Engine, spec: TaskSpec | None) -> None:
    """Store the definition of ``spec``'s code-defined queue again if it is missing.

    Called before each claim, so it reads the store at most once per ``QUEUE_CHECK_S`` per
    queue and process: the claim's hot path pays a dictionary lookup, not a round trip."""
    queue = spec.queue if spec is not None else None
    if queue is None or queue.concurrency_limit is None:
        return
    key, now = (id(engine), queue.name), time.monotonic()
    if _checked.get(key, 0.0) > now:
        return
    _checked[key] = now + QUEUE_CHECK_S
    if engine.store.get_queue(queue.name) is None:
        logger.warning(
            "celery-trigger: queue %r was missing from the store; defining it again", queue.name
        )
        concurrency.define_queue(engine, queue.name, queue.concurrency_limit)
