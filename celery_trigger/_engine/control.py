"""Run control from outside the run: cancel (with the run's tree), replay, reschedule.

Cancel is one guarded transition per run: a run not yet final becomes ``CANCELED``, its
timers are dropped, its waiters are woken, a slot or place in line it held is released (an
executing attempt releases its own when it stops) and queued copies of its message are
revoked through the broker.
"""

from __future__ import annotations

from typing import Any

from .._serialization import dumps, loads
from .._store.base import Transition
from .._vocab import FINAL_STATUSES, RunStatus, TimerKind
from ..errors import RunNotFoundError, TaskRunError
from . import concurrency
from .clock import now_ms
from .dispatch import create_and_publish
from .engine import Engine
from .prepare import prepare
from .waiters import notify_waiters

#: The error stored on a cancelled run.
CANCEL_ERROR = TaskRunError("TASK_RUN_CANCELLED", "Canceled by user")
#: Attempts at the guarded cancel write when the run's status keeps changing under it.
_CANCEL_TRIES = 8
#: Timers that would move a run that is now cancelled.
_CANCEL_DROPS = (
    TimerKind.ENQUEUE,
    TimerKind.TTL,
    TimerKind.RETRY,
    TimerKind.PUBLISH,
    TimerKind.RESUME,
)


def cancel_one(engine: Engine, run_id: str) -> bool:
    """Cancel one run unless it is final; True when it was cancelled now."""
    record = engine.store.get_run(run_id)
    if record is None:
        return False
    status = record["status"]
    for _ in range(_CANCEL_TRIES):
        if RunStatus(status) in FINAL_STATUSES:
            return False
        # Guarded by the exact status last seen: when it is written, ``status`` is the
        # status the run was cancelled from (a claim in between makes it retry instead).
        result = engine.store.transition(
            run_id,
            now_ms(),
            allowed=status,
            status=RunStatus.CANCELED.value,
            remove_timers=[kind.member(run_id) for kind in _CANCEL_DROPS],
            fields={"error": dumps(CANCEL_ERROR.to_dict())},
            pending_task=record["task"],
        )
        if result.ok:
            _cancelled(engine, run_id, status, result.record)
            return True
        if not result.status:
            return False  # the record is gone
        status = result.status
    return False


def _cancelled(engine: Engine, run_id: str, previous: str, record: dict[str, str] | None) -> None:
    """After the cancel write: wake waiters, free what the run held, revoke its message."""
    notify_waiters(engine, run_id)
    if previous != RunStatus.EXECUTING.value:
        # only a run that was not executing gives its slot (or place in line) back here;
        # an executing attempt releases its own when it stops
        concurrency.release(engine, record)
    # every cancelled run: queued copies are dropped, and monitors see it revoked
    engine.broker.revoke(run_id)


def cancel_tree(engine: Engine, run_id: str) -> None:
    """Cancel a run and, recursively, its children; ``RunNotFoundError`` for no run."""
    if engine.store.get_run(run_id) is None:
        raise RunNotFoundError(f"no run with id {run_id!r}")
    pending = [run_id]
    seen: set[str] = set()
    while pending:
        target = pending.pop()
        if target in seen:
            continue
        seen.add(target)
        cancel_one(engine, target)
        pending.extend(engine.store.children(target))


def replay(engine: Engine, run_id: str) -> tuple[str, bool, str]:
    """A new run of the same task with the original payload, tags and seed metadata;
    ``(new run id, cached, task id)``."""
    record = engine.store.get_run(run_id)
    if record is None:
        raise RunNotFoundError(f"no run with id {run_id!r}")
    options: dict[str, Any] = {
        "tags": loads(record.get("tags")) or None,
        "machine": record.get("machine") or None,
    }
    if record.get("seed_meta"):
        options["metadata"] = loads(record["seed_meta"])
    if record.get("ckey"):
        options["concurrency_key"] = record["ckey"]
    for label in ("version", "region"):  # a replay runs where the original did (D-21)
        if record.get(label):
            options[label] = record[label]
    if record.get("queue") and not record["queue"].startswith("task/"):
        options["queue"] = record["queue"]
    prepared = prepare(engine, record["task"], loads(record.get("payload")), options, parse=False)
    prepared.new.fields["is_replay"] = "1"
    prepared.new.fields["is_test"] = record.get("is_test", "0")
    prepared.new.fields["replayed_from"] = run_id
    new_id, cached = create_and_publish(engine, [prepared])[0]
    return new_id, cached, record["task"]


def reschedule(engine: Engine, run_id: str, due_ms: int) -> Transition:
    """Move a DELAYED run's start to ``due_ms`` (the transition says whether it was)."""
    return engine.store.transition(
        run_id,
        now_ms(),
        allowed=RunStatus.DELAYED.value,
        add_timers=[(TimerKind.ENQUEUE.member(run_id), due_ms)],
        fields={"delay_until": str(due_ms)},
    )
