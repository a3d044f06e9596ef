"""A new run whose message the broker refused: marked, never executed behind the caller.

Invariant: when ``trigger`` raises ``PublishError`` no run it wrote will execute. The runs
are written before their messages are sent (so a crash in between is covered by the publish
watchdog); a send that *fails* instead marks every run of the call still ``QUEUED`` as
``SYSTEM_FAILURE`` (error ``PUBLISH_FAILED``) and drops its publish watchdog, so the timer
service never publishes it later. A failed run's idempotency key goes to the next trigger
(SEMANTICS §5.2): retrying is safe with or without the key. Runs already published keep
running; the mark is guarded by ``QUEUED``, so one a worker already claimed is untouched.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NoReturn

from .._serialization import dumps
from .._vocab import RunStatus, TimerKind
from ..errors import PublishError, TaskRunError
from .clock import now_ms
from .engine import Engine

logger = logging.getLogger("celery_trigger")

PUBLISH_FAILED = "PUBLISH_FAILED"


def unpublished(engine: Engine, run_ids: Sequence[str], exc: BaseException) -> NoReturn:
    """Mark the runs ``run_ids`` that are still QUEUED as failed; raise ``PublishError``."""
    error = TaskRunError(PUBLISH_FAILED, f"the broker did not take the message: {exc}")
    for run_id in run_ids:
        try:
            engine.store.transition(
                run_id,
                now_ms(),
                allowed=RunStatus.QUEUED.value,
                status=RunStatus.SYSTEM_FAILURE.value,
                remove_timers=[TimerKind.PUBLISH.member(run_id), TimerKind.TTL.member(run_id)],
                fields={"error": dumps(error.to_dict())},
            )
        except Exception:  # the watchdog stays armed: the run runs late, not never
            logger.exception("celery-trigger: could not mark unpublished run %s", run_id)
    raise PublishError(str(error.message)) from exc
