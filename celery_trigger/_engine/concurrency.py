"""Queue concurrency as leased slots (DESIGN §6, SEMANTICS §6): releases, promotions and the
timer actions of slots.

The atomic work is in the store (``lua/slots.lua``): the claim takes a slot of the run's
(sub-)queue in the same script that takes the run, or parks the run in the sub-queue's
waiting set and drops the delivery; ``release_slot`` gives a slot back and hands it to the
next waiting run. This module decides when to call them and publishes promoted runs;
``slots.py`` says which sub-queue a run's slot belongs to.

Invariants:
- a run holds a slot only while its record says so (field ``slot``); every end of an
  attempt (completion, failure, park, long retry, cancel, expiry, crash) releases it, and a
  release of an attempt whose run is ``EXECUTING`` again changes nothing;
- a promoted run holds its slot before it is published (a hand-over: no newcomer can take
  it); the releasing process publishes it at once, to the front of its broker queue, and
  the ``promote`` timer (5 s later) does it if that process died first;
- slot leases are renewed with the run's lease by the watchdog heartbeat; a lapsed slot is
  reaped (``reap`` timer), its sub-queue admits its next run (``pump``) and its run is
  published again (``promote``: a dead worker's run, or a promoted run whose message died
  with a worker before its claim) to queue up anew;
- a run of a queue this process knows is limited takes its place in line when it is
  created (``slots.join_scope``, in the creating pipeline), so runs start in line order
  however workers receive their messages; such a run, promoted before its own message
  arrived, is left to that message instead of being published again;
- queues without a limit, with no environment limit, cost nothing: the claim script reads
  the queue's limit itself and skips all slot work; messages of runs outside their task's
  default queue carry the header ``ct_slot`` so the claim addresses the right sub-queue.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from .._keys import Keys
from .._vocab import RunStatus, TimerKind
from .clock import now_ms
from .dispatch import publish_record
from .engine import Engine
from .slots import scope

logger = logging.getLogger("celery_trigger")

#: Delay of the ``promote`` fallback behind the releasing process's own publish (ms).
PROMOTE_SAFETY_MS = 5000
_PUBLISHABLE = (RunStatus.QUEUED.value, RunStatus.DEQUEUED.value)


def _handoff_ms(engine: Engine) -> int:
    """How long a promoted run's slot waits for it to be claimed (one lease)."""
    return int(engine.settings.lease_seconds * 1000)


def release(engine: Engine, record: Mapping[str, str] | None) -> None:
    """The run's attempt ended (or the run was cancelled or expired): give back its slot or
    its place in line and publish the runs promoted into the freed slot.

    Failures are logged, not raised: the slot's lease lapses and the reaper frees it.
    """
    if not record or not record.get("slot") or not record.get("id"):
        return
    try:
        promoted = engine.store.release_slot(
            record["id"],
            scope(engine, record.get("queue", ""), record.get("ckey")),
            now_ms(),
            _handoff_ms(engine),
            PROMOTE_SAFETY_MS,
        )
        publish_promoted(engine, promoted)
    except Exception:
        logger.warning(
            "celery-trigger: could not release the slot of %s; its lease will "
            "lapse and the reaper frees it",
            record.get("id"),
            exc_info=True,
        )


def pump(engine: Engine, sub: str) -> list[str]:
    """Admit the waiting runs of sub-queue ``sub`` that now fit; publish them."""
    queue, ckey = Keys.split_subqueue(sub)
    promoted: list[str] = engine.store.release_slot(
        None, scope(engine, queue, ckey), now_ms(), _handoff_ms(engine), PROMOTE_SAFETY_MS
    )
    publish_promoted(engine, promoted)
    return promoted


def pump_queue(engine: Engine, queue: str) -> int:
    """Admit what fits in every sub-queue of ``queue`` (after a resume or a new limit)."""
    store = engine.store
    subs = set(store.queue_subqueues(queue)) | {Keys.subqueue(queue)}
    return sum(len(pump(engine, sub)) for sub in sorted(subs))


def define_queue(engine: Engine, name: str, limit: int | None) -> None:
    """Store a code-defined queue's limit; when it changed, admit the runs that now fit."""
    value = "" if limit is None else str(limit)
    current = engine.store.get_queue(name)
    if current is not None and current.get("concurrency_limit", "") == value:
        return
    engine.store.put_queue(name, {"concurrency_limit": value})
    if current is not None:
        pump_queue(engine, name)


def publish_promoted(engine: Engine, run_ids: Iterable[str]) -> None:
    """Publish runs that were handed a slot (and drop their ``promote`` fallback timer).

    A run that can no longer use its slot (cancelled, expired) gives it back, which promotes
    the next one. (A run in line since its creation whose own message is still on its way is
    not among the promoted: the store leaves it to that message.)
    """
    pending = list(run_ids)
    while pending:
        records = engine.store.get_runs(pending)
        done = [TimerKind.PROMOTE.member(run_id) for run_id in pending]
        pending = []
        for record in records:
            if record is None:
                continue
            status = record.get("status")
            if (
                status in _PUBLISHABLE
                or (status == RunStatus.WAITING.value and record.get("woken") == "1")
                or (
                    status == RunStatus.EXECUTING.value
                    and float(record.get("lease_exp") or 0) < now_ms()
                )
            ):
                # (an EXECUTING run with a lapsed lease waited for a slot to be taken over)
                publish_record(engine, record, front=True)
            elif status != RunStatus.EXECUTING.value:
                pending.extend(
                    engine.store.release_slot(
                        record["id"],
                        scope(engine, record.get("queue", ""), record.get("ckey")),
                        now_ms(),
                        _handoff_ms(engine),
                        PROMOTE_SAFETY_MS,
                    )
                )
        engine.store.remove_timers(done)


# timer handlers (``_engine/timers.py``) -------------------------------------------------
def on_promote(engine: Engine, run_id: str) -> None:
    """``promote``: the run was handed a slot and nobody published it yet."""
    publish_promoted(engine, [run_id])


def on_pump(engine: Engine, sub: str) -> None:
    """``pump``: a slot of ``sub`` was reaped; admit its next waiting runs."""
    pump(engine, sub)


def on_reap(engine: Engine, _: str) -> None:
    """``reap``: drop slots whose lease lapsed (dead workers, unused hand-overs)."""
    reaped = engine.store.reap_slots(now_ms())
    if reaped:
        logger.warning(
            "celery-trigger: %d concurrency slot(s) lapsed (a worker died?); "
            "handing them to waiting runs",
            reaped,
        )
