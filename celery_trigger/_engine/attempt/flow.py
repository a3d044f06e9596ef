"""Executing a delivered run as explicit phases::

    claim → before → run → outcome → finish → release

- claim: take the run under a lease in one script (a duplicate delivery, a final or
  cancelled run, a run over its queue's limit is dropped: ``DropDelivery``);
- before: build the attempt's context and state; participants start (watchdog, usage);
- run: middleware, init and start hooks, the run function, success/failure hooks and the
  retry decision (``run.py``) → an ``Outcome``;
- outcome: participants see it (metadata flush, usage); a park ends the delivery
  (``EndAttempt``), a broken one-wait rule fails the run;
- finish: one guarded write (``finish.py``); participants are told (waiters);
- release: however the delivery ended, participants release (the concurrency slot).

A warm retry loops back to "before" within the same delivery and lease. Participants are
``participants.py``'s; a new cross-cutting feature is a participant, not a branch here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from ..._serialization import dumps
from ..._vocab import RunStatus, TimerKind
from .. import registry
from ..clock import now_ms
from ..contexts import build_context
from ..dispatch import create_from_message, enqueue_delayed
from ..engine import Engine
from ..journal import load_journal
from ..recovery import ensure_queue, report_missing
from ..slots import hint
from ..state import Journal, RunState, Totals
from ..watchdog import RunCancelled
from .finish import check_crash_budget, expire_run, fail_parked, finish
from .outcome import DropDelivery, EndAttempt, Outcome, concurrent_wait_failure
from .participants import DEFAULT_PARTICIPANTS, Attempt, Participant
from .run import run_attempt

#: Timers a claim drops: the run is taken, so its publish watchdog, TTL and resume are moot.
_CLAIM_DROPS = (TimerKind.PUBLISH, TimerKind.TTL, TimerKind.RESUME)


def execute(
    engine: Engine,
    run_id: str,
    task_id: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    embed: dict[str, Any] | None = None,
    slot: str | None = None,
    ours: bool = False,
    participants: tuple[Participant, ...] = DEFAULT_PARTICIPANTS,
) -> Any:
    """Run one delivery of ``run_id``. Returns the output or raises ``DropDelivery``,
    ``EndAttempt`` or ``AttemptFailed`` (see ``outcome.py``). ``ours``: the message was
    published by celery-trigger (header ``ct_run``), so its run record was written first."""
    attempt = Attempt(engine, run_id, task_id, uuid.uuid4().hex, registry.get(task_id))
    try:
        _claim(attempt, args, kwargs, slot, ours)
        _keep_canvas(attempt, embed)
        return _attempts(attempt, participants)
    finally:
        for participant in participants:
            participant.on_release(attempt)


def _lease_ms(engine: Engine) -> int:
    return int(engine.settings.lease_seconds * 1000)


def _claim(
    attempt: Attempt, args: Sequence[Any], kwargs: Mapping[str, Any], slot: str | None, ours: bool
) -> None:
    """Claim phase: take the run (creating the record of a plain send nobody wrote; a
    message celery-trigger published whose record is gone is dropped, never run)."""
    engine, run_id = attempt.engine, attempt.run_id
    store, lease_ms = engine.store, _lease_ms(engine)
    ensure_queue(engine, attempt.spec)
    scope = hint(engine, attempt.task_id, slot)
    drops = [kind.member(run_id) for kind in _CLAIM_DROPS]
    claim = store.claim_attempt(
        run_id, attempt.token, now_ms(), lease_ms, "new", drops, scope=scope
    )
    if claim.action == "missing":
        if ours:
            report_missing(run_id, attempt.task_id)
            raise DropDelivery("missing record")
        create_from_message(engine, run_id, attempt.task_id, args, kwargs)
        claim = store.claim_attempt(
            run_id, attempt.token, now_ms(), lease_ms, "new", (), scope=scope
        )
    if claim.reason == RunStatus.DELAYED.value and enqueue_delayed(
        engine, run_id, only_if_due=True
    ):
        # a Celery ETA message at its ETA: take the run now rather than wait for the timer
        claim = store.claim_attempt(
            run_id, attempt.token, now_ms(), lease_ms, "new", drops, scope=scope
        )
    if claim.action != "ok" or claim.record is None:
        if claim.reason == "ttl":
            expire_run(engine, run_id)
        raise DropDelivery(claim.reason)  # "queued": over its queue's limit, it waits
    attempt.claimed = attempt.record = claim.record
    if claim.record.get("takeover") == "1":
        check_crash_budget(engine, run_id, attempt.token, claim.record)


def _keep_canvas(attempt: Attempt, embed: dict[str, Any] | None) -> None:
    """Keep the first delivery's message options (canvas links and fields, priority,
    headers) on the run, so the deliveries celery-trigger publishes later (long retries,
    resumes) carry them too and a chain or chord continues. A plain send from a process
    with celery-trigger set up saved them at publish time already."""
    record = attempt.record
    if embed is None or record.get("embed"):
        return
    text = dumps(embed, what="canvas links")
    attempt.engine.store.transition(
        attempt.run_id, now_ms(), allowed=RunStatus.EXECUTING.value, fields={"embed": text}
    )
    record["embed"] = text


def _state(attempt: Attempt, totals: Totals) -> RunState:
    """Before phase: the attempt's context and private state from its claimed record."""
    engine, record = attempt.engine, attempt.record
    resumed = record.get("resumed") == "1"
    journal = load_journal(engine.store.journal(attempt.run_id)) if resumed else Journal()
    ctx = build_context(engine, attempt.spec, record, journal)
    return RunState(
        run_id=attempt.run_id,
        task_id=attempt.task_id,
        root_id=record.get("root") or attempt.run_id,
        depth=int(record.get("depth") or 0),
        attempt=ctx.attempt.number,
        token=attempt.token,
        is_test=record.get("is_test") == "1",
        ctx=ctx,
        record=record,
        journal=journal,
        totals=totals,
        attempt_ms_before=int(record.get("attempt_ms") or 0) if resumed else 0,
        resumed=resumed,
        retries_off=engine.settings.environment == "DEVELOPMENT"
        and not engine.config.retries_enabled_in_dev,
    )


def _attempts(attempt: Attempt, participants: tuple[Participant, ...]) -> Any:
    """Run attempts until one is written (a warm retry runs the next one here)."""
    record = attempt.record
    totals = Totals(int(record.get("duration_ms") or 0), float(record.get("cost") or 0))
    while True:
        state = attempt.state = _state(attempt, totals)
        for participant in participants:
            participant.before_run(attempt)
        outcome: Outcome | None = None
        try:
            outcome = run_attempt(attempt.engine, attempt.spec, state)
        except RunCancelled:
            raise DropDelivery("cancelled") from None
        finally:
            seen = outcome
            if outcome is not None and state.journal.concurrent:
                seen = concurrent_wait_failure()
            for participant in participants:
                participant.after_run(attempt, seen)
        assert outcome is not None
        if state.journal.concurrent:
            outcome = _concurrent(attempt, outcome)
        elif outcome.kind == "park":
            raise EndAttempt(outcome.reason)
        next_record = finish(attempt, outcome, participants, _lease_ms(attempt.engine))
        if next_record is None:
            return outcome.output
        attempt.record = next_record


def _concurrent(attempt: Attempt, outcome: Outcome) -> Outcome:
    """The run broke the one-wait rule: it fails SYSTEM_FAILURE whatever it returned."""
    failed = concurrent_wait_failure()
    if outcome.kind == "park":
        fail_parked(attempt.engine, attempt.run_id, failed)  # raises AttemptFailed
    return failed
