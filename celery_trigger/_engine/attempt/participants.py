"""Attempt participants: small features hooked onto the phases of an attempt.

The flow (``flow.py``) runs each delivery as phases::

    claim → [before] → run → outcome → finish → [after finish] → release

and calls every participant, in order, at its hooks (dramatiq's middleware is the model):

- ``before_run(attempt)``: the attempt's state is built, the run function is about to run
  (also for a warm retry in the same delivery, and for a resumed attempt);
- ``after_run(attempt, outcome)``: the run phase ended, whatever the outcome (``outcome``
  is None when it was interrupted: cancel, lease lost). Nothing is stored yet;
- ``after_finish(attempt, has_waiters)``: the outcome was written (final, long retry or
  failed) and ``has_waiters`` says whether runs are parked on this one;
- ``on_release(attempt)``: the delivery is over, however it ended (also after a drop).

A new cross-cutting feature (logging, usage, tracing, cancel) is a new participant added to
``DEFAULT_PARTICIPANTS``, not a new branch in the flow. Participants must not raise from
``on_release`` (log instead): the delivery's own outcome must reach Celery.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..._vocab import RunStatus
from .. import concurrency, hooks, registry, runlog
from ..metadata import end_attempt as end_metadata
from ..waiters import notify_waiters
from ..watchdog import RunCancelled
from .observe import log_failure, span_attributes

if TYPE_CHECKING:
    from ..engine import Engine
    from ..registry import TaskSpec
    from ..state import RunState
    from .outcome import Outcome


@dataclass
class Attempt:
    """One delivery of a run as the phases see it."""

    engine: Engine
    run_id: str
    task_id: str
    #: the lease token of this delivery's claim
    token: str
    spec: TaskSpec | None
    #: the record as claimed (the slot it holds, its queue); None until the claim succeeds
    claimed: dict[str, str] | None = None
    #: the record of the attempt being run (a warm retry re-claims it)
    record: dict[str, str] = field(default_factory=dict)
    #: the state of the attempt being run
    state: RunState | None = None


class Participant:
    """Base class: every hook does nothing."""

    def before_run(self, attempt: Attempt) -> None:
        """The run function is about to run."""

    def after_run(self, attempt: Attempt, outcome: Outcome | None) -> None:
        """The run phase ended (``outcome`` None: interrupted)."""

    def after_finish(self, attempt: Attempt, has_waiters: bool) -> None:
        """The attempt's outcome was written."""

    def on_release(self, attempt: Attempt) -> None:
        """The delivery is over."""


class Watchdog(Participant):
    """Lease heartbeats, the max_duration budget and cancel (``_engine/watchdog.py``)."""

    def before_run(self, attempt: Attempt) -> None:
        state = attempt.state
        assert state is not None
        record = state.record
        max_duration = int(record["max_duration"]) if record.get("max_duration") else None
        used_s = state.attempt_ms_before / 1000
        budget = max(0.001, max_duration - used_s) if max_duration else None
        state.watch = attempt.engine.watchdog.start(attempt.run_id, attempt.token, budget)

    def after_run(self, attempt: Attempt, outcome: Outcome | None) -> None:
        attempt.engine.watchdog.stop(attempt.run_id)


class Cancel(Participant):
    """An attempt stopped by a cancel (the watchdog's ``RunCancelled``) runs the task's and
    the global ``on_cancel(payload, ctx)`` hooks once; a lease lost to a takeover does not."""

    def after_run(self, attempt: Attempt, outcome: Outcome | None) -> None:
        state = attempt.state
        watch = state.watch if state is not None else None
        if state is None or outcome is not None or watch is None:
            return
        if watch.interrupted is not RunCancelled:
            return
        record = attempt.engine.store.get_run(attempt.run_id) or {}
        if record.get("status") != RunStatus.CANCELED.value:
            return
        defn = registry.get(state.task_id)
        chain = hooks.chain("on_cancel", defn)
        hooks.run_all(chain, swallow=True, payload=state.payload, ctx=state.ctx, task=defn)


class Metadata(Participant):
    """Every attempt's last metadata writes are stored before its outcome (META-10)."""

    def after_run(self, attempt: Attempt, outcome: Outcome | None) -> None:
        if attempt.state is not None:
            end_metadata(attempt.state)


class Usage(Participant):
    """Compute time and cost of the run's attempts (``duration_ms``, ``cost``)."""

    def before_run(self, attempt: Attempt) -> None:
        assert attempt.state is not None
        attempt.state.started_mono = time.monotonic()

    def after_run(self, attempt: Attempt, outcome: Outcome | None) -> None:
        state = attempt.state
        if state is None or state.started_mono is None or outcome is None:
            return
        if outcome.kind == "park":
            return  # the park wrote this attempt's usage so far itself
        elapsed = int((time.monotonic() - state.started_mono) * 1000)
        state.totals.duration_ms += elapsed
        state.totals.cost += elapsed * state.ctx.machine.cents_per_ms


class Waiters(Participant):
    """Runs parked on this one are woken as soon as it is final (the notify timer is the
    safety net if this process dies first)."""

    def after_finish(self, attempt: Attempt, has_waiters: bool) -> None:
        if has_waiters:
            notify_waiters(attempt.engine, attempt.run_id)


class Slots(Participant):
    """A concurrency slot the claim took is given back and handed to the next waiting run
    (a no-op while the run is EXECUTING again, and for runs of unlimited queues)."""

    def on_release(self, attempt: Attempt) -> None:
        concurrency.release(attempt.engine, attempt.claimed)


class RunLogging(Participant):
    """``logger.*`` records belong to the attempt during its run phase; a failed attempt is
    logged once (``observe.py``). Its span gets the ``ct.*`` attributes."""

    def before_run(self, attempt: Attempt) -> None:
        assert attempt.state is not None
        runlog.begin(attempt.engine, attempt.state)
        span_attributes(attempt.state)

    def after_run(self, attempt: Attempt, outcome: Outcome | None) -> None:
        try:
            if outcome is not None:
                log_failure(outcome)
        finally:
            runlog.end()


#: The participants of every attempt, in call order.
DEFAULT_PARTICIPANTS: tuple[Participant, ...] = (
    RunLogging(),
    Usage(),
    Watchdog(),
    Cancel(),
    Metadata(),
    Waiters(),
    Slots(),
)
