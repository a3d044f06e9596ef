"""Queue concurrency as leased slots (DESIGN §6, SEMANTICS §6): the engine's side.

The atomic work is in the store (``lua/slots.lua``): the claim takes a slot of the run's
(sub-)queue in the same script that takes the run, or parks the run in the sub-queue's
waiting set and drops the delivery; ``release_slot`` gives a slot back and hands it to the
next waiting run. This module decides when to call them and publishes promoted runs.

Invariants:
- a run holds a slot only while its record says so (field ``slot``); every end of an
  attempt (completion, failure, park, long retry, cancel, expiry, crash) releases it, and a
  release of an attempt whose run is ``EXECUTING`` again changes nothing;
- a promoted run holds its slot before it is published (a hand-over: no newcomer can take
  it); the releasing process publishes it at once, to the front of its broker queue, and
  ``promote|<run>`` (5 s later) does it if that process died first;
- slot leases are renewed with the run's lease by the watchdog heartbeat; a lapsed slot is
  reaped (``reap|slots``), its sub-queue admits its next run (``pump|<sub>``) and its run is
  published again (``promote|<run>``: a dead worker's run, or a promoted run whose message
  died with a worker before its claim) to queue up anew;
- a run of a queue this process knows is limited takes its place in line when it is
  created (``join_scope``, in the creating pipeline), so runs start in line order however
  workers receive their messages; such a run, promoted before its own message arrived, is
  left to that message instead of being published again;
- queues without a limit, with no environment limit, cost nothing: the claim script reads
  the queue's limit itself and skips all slot work; messages of runs outside their task's
  default queue carry the header ``ct_slot`` so the claim addresses the right sub-queue.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .. import _definition
from .._keys import Keys
from .._store.base import SlotScope

logger = logging.getLogger("celery_trigger")

#: Delay of the ``promote|<run>`` fallback behind the releasing process's own publish (ms).
PROMOTE_SAFETY_MS = 5000
_PUBLISHABLE = ("QUEUED", "DEQUEUED")


def now_ms() -> int:
    return int(time.time() * 1000)


def _handoff_ms(trigger: Any) -> int:
    """How long a promoted run's slot waits for it to be claimed (one lease)."""
    return int(trigger.settings.lease_seconds * 1000)


def scope(trigger: Any, queue: str, ckey: str | None = None) -> SlotScope:
    """The slot scope of a (sub-)queue under this process's environment limit."""
    return SlotScope(queue, ckey or "", trigger.settings.concurrency_limit)


def _default_queue(task_id: str) -> str:
    defn = _definition.get(task_id)
    return defn.queue.name if defn is not None and defn.queue is not None else f"task/{task_id}"


def slot_header(fields: Mapping[str, str]) -> str | None:
    """The ``ct_slot`` message header of a run whose (sub-)queue is not its task's default
    (a concurrency key, another queue), so the claim addresses the right sub-queue at once."""
    queue, ckey = fields.get("queue", ""), fields.get("ckey", "")
    if not queue or (not ckey and queue == _default_queue(fields.get("task", ""))):
        return None
    return Keys.subqueue(queue, ckey)


def hint(trigger: Any, task_id: str, header: str | None = None) -> SlotScope:
    """The scope a delivered run of ``task_id`` most likely has: the message's ``ct_slot``
    header, else its task's default queue. (A wrong hint costs the claim a round trip.)"""
    if header:
        queue, ckey = Keys.split_subqueue(header)
        return scope(trigger, queue, ckey)
    return scope(trigger, _default_queue(task_id))


def join_scope(trigger: Any, fields: Mapping[str, str]) -> SlotScope | None:
    """The scope a new QUEUED run takes its place in line with at creation, when this
    process knows its queue has a limit (a dynamic queue, its task's own queue, or an
    environment limit); otherwise None and the run joins when a worker claims it."""
    queue = fields.get("queue", "")
    if not queue:
        return None
    if trigger.settings.concurrency_limit is None and not fields.get("queue_limit"):
        defn = _definition.get(fields.get("task", ""))
        own = defn.queue if defn is not None else None
        if own is None or own.name != queue or own.concurrency_limit is None:
            return None
    return scope(trigger, queue, fields.get("ckey"))


def line_seq(fields: Mapping[str, str], index: int, count: int) -> str:
    """A run's place among runs queued in the same ms (0-999, a fraction of that ms in the
    line's order): a batch's item index, or the microseconds of a single trigger, so runs
    triggered one after another keep their order."""
    if count > 1:
        return str(min(index, 999))
    micros = (time.time() * 1000 - int(fields.get("queued_at") or 0)) * 1000
    return str(int(min(999.0, max(0.0, micros))))


def release(trigger: Any, record: Mapping[str, str] | None) -> None:
    """The run's attempt ended (or the run was cancelled or expired): give back its slot or
    its place in line and publish the runs promoted into the freed slot.

    Failures are logged, not raised: the slot's lease lapses and the reaper frees it.
    """
    if not record or not record.get("slot") or not record.get("id"):
        return
    try:
        promoted = trigger.store.release_slot(
            record["id"],
            scope(trigger, record.get("queue", ""), record.get("ckey")),
            now_ms(),
            _handoff_ms(trigger),
            PROMOTE_SAFETY_MS,
        )
        publish_promoted(trigger, promoted)
    except Exception:
        logger.warning(
            "celery-trigger: could not release the slot of %s; its lease will "
            "lapse and the reaper frees it",
            record.get("id"),
            exc_info=True,
        )


def pump(trigger: Any, sub: str) -> list[str]:
    """Admit the waiting runs of sub-queue ``sub`` that now fit; publish them."""
    queue, ckey = trigger.store.keys.split_subqueue(sub)
    promoted: list[str] = trigger.store.release_slot(
        None, scope(trigger, queue, ckey), now_ms(), _handoff_ms(trigger), PROMOTE_SAFETY_MS
    )
    publish_promoted(trigger, promoted)
    return promoted


def pump_queue(trigger: Any, queue: str) -> int:
    """Admit what fits in every sub-queue of ``queue`` (after a resume or a new limit)."""
    store = trigger.store
    subs = set(store.queue_subqueues(queue)) | {store.keys.subqueue(queue)}
    return sum(len(pump(trigger, sub)) for sub in sorted(subs))


def define_queue(trigger: Any, name: str, limit: int | None) -> None:
    """Store a code-defined queue's limit; when it changed, admit the runs that now fit."""
    value = "" if limit is None else str(limit)
    current = trigger.store.get_queue(name)
    if current is not None and current.get("concurrency_limit", "") == value:
        return
    trigger.store.put_queue(name, {"concurrency_limit": value})
    if current is not None:
        pump_queue(trigger, name)


def publish_promoted(trigger: Any, run_ids: Iterable[str]) -> None:
    """Publish runs that were handed a slot (and drop their ``promote|`` fallback timer).

    A run that can no longer use its slot (cancelled, expired) gives it back, which promotes
    the next one. (A run in line since its creation whose own message is still on its way is
    not among the promoted: the store leaves it to that message.)
    """
    from .._trigger import publish_record

    pending = list(run_ids)
    while pending:
        records = trigger.store.get_runs(pending)
        done = [f"promote|{run_id}" for run_id in pending]
        pending = []
        for record in records:
            if record is None:
                continue
            status = record.get("status")
            if (
                status in _PUBLISHABLE
                or (status == "WAITING" and record.get("woken") == "1")
                or (status == "EXECUTING" and float(record.get("lease_exp") or 0) < now_ms())
            ):
                # (an EXECUTING run with a lapsed lease waited for a slot to be taken over)
                publish_record(trigger, record, front=True)
            elif status != "EXECUTING":
                pending.extend(
                    trigger.store.release_slot(
                        record["id"],
                        scope(trigger, record.get("queue", ""), record.get("ckey")),
                        now_ms(),
                        _handoff_ms(trigger),
                        PROMOTE_SAFETY_MS,
                    )
                )
        trigger.store.remove_timers(done)


# timer handlers (``_engine/timers.py``) -------------------------------------------------
def on_promote(trigger: Any, run_id: str) -> None:
    """``promote|<run>``: the run was handed a slot and nobody published it yet."""
    publish_promoted(trigger, [run_id])


def on_pump(trigger: Any, sub: str) -> None:
    """``pump|<sub>``: a slot of ``sub`` was reaped; admit its next waiting runs."""
    pump(trigger, sub)


def on_reap(trigger: Any, _: str) -> None:
    """``reap|slots``: drop slots whose lease lapsed (dead workers, unused hand-overs)."""
    reaped = trigger.store.reap_slots(now_ms())
    if reaped:
        logger.warning(
            "celery-trigger: %d concurrency slot(s) lapsed (a worker died?); "
            "handing them to waiting runs",
            reaped,
        )
