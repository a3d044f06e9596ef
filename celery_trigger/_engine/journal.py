"""The journal: durable operations numbered by call order, replay, and parking.

Invariants (DESIGN §4, decision D-17):
- Each durable operation of an attempt gets the next ordinal ``k``. If the journal has an
  entry ``k`` (the run resumed), the operation is answered from it; its kind and target must
  match, else ``NonDeterminismError`` (the run fails, not retried).
- Child run and token ids derive from ``(run id, attempt, k, index)``, so a crash between a
  trigger and its journal write cannot create a second child.
- A wait that is not satisfied parks the run in one script (journal entry, wake-up
  registration, status ``WAITING``, lease released) and raises ``Park``, a ``BaseException``
  that user ``except Exception`` blocks cannot swallow. Only this module raises or catches
  it: the attempt learns of a park through ``call_parkable``.
- The journal belongs to the attempt: a retry starts with an empty journal.
- In-process sleeps (waits up to the threshold) take no ordinal; replay skips those before
  the resume point, since they already happened.
- Metadata mutations and ``tags.add`` take no ordinal either: their effects are stored
  before the park (metadata is flushed first, tags are written at the call), so replay
  skips them instead of recording a journal entry per write (``metadata.py``).
- At most one durable wait is outstanding: a second one raises ``ConcurrentWaitError`` and the
  run ends ``SYSTEM_FAILURE`` (SEMANTICS §3.4).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .._serialization import dumps, loads, to_jsonable
from .._vocab import RunStatus, TimerKind
from ..errors import ConcurrentWaitError, NonDeterminismError, TaskRunError
from . import tracing
from .clock import now_ms
from .engine import current
from .metadata import flush_state as flush_metadata
from .state import Journal, RunState, current_state
from .waiters import notify_waiters

T = TypeVar("T")

#: The error of a run that broke the one-wait rule (same text as the lifecycle's).
CONCURRENT_WAIT_MESSAGE = (
    "Parallel waits are not supported, e.g. using asyncio.gather or "
    "threads to wait on several runs: use batch_trigger_and_wait instead"
)


class Park(BaseException):
    """The attempt parked at a durable wait; it resumes later in the same attempt."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LeaseLost(BaseException):
    """The run is no longer this attempt's (cancelled, or taken over): stop quietly."""


def load_journal(raw: Sequence[str]) -> Journal:
    entries = [loads(item) for item in raw]
    return Journal(entries=entries, replay_len=len(entries))


def _state(what: str) -> RunState:
    state = current_state()
    if state is None:
        raise RuntimeError(f"{what} can only be used from inside a task run")
    return state


def _journal(state: RunState) -> Journal:
    journal = state.journal
    if journal is None:
        journal = state.journal = Journal()
    return journal


def derive_id(prefix: str, state: RunState, k: int, index: int = 0) -> str:
    digest = hashlib.sha256(f"{state.run_id}|{state.attempt}|{k}|{index}".encode()).hexdigest()
    return f"{prefix}{digest[:24]}"


def _next(state: RunState, kind: str, target: str) -> tuple[int, dict[str, Any] | None]:
    """Take the next ordinal; return the recorded entry when replaying it."""
    journal = _journal(state)
    with journal.lock:
        late = journal.parked
        k = journal.pos
        if not late:
            journal.pos += 1
    if late:
        _flag(state, concurrent=True)
        raise ConcurrentWaitError(
            "Parallel waits are not supported: a durable operation "
            "started while the run was parking at another wait"
        )
    if k < len(journal.entries):
        entry = journal.entries[k]
        if entry.get("kind") != kind or entry.get("target") != target:
            raise NonDeterminismError(
                f"replay found {kind} {target!r} at durable step {k}, but the journal recorded "
                f"{entry.get('kind')} {entry.get('target')!r}. Code before a wait re-executes "
                "on resume and must call the same celery-trigger operations in the same order; "
                "wrap non-deterministic work (random choices, clock reads, I/O results that "
                "decide what to trigger) in ct.steps.run(name, fn) so it is recorded once."
            )
        return k, entry
    return k, None


def _append(state: RunState, k: int, entry: dict[str, Any]) -> None:
    journal = _journal(state)
    if current().store.journal_append(state.run_id, state.token, k, dumps(entry)) < 0:
        raise LeaseLost("the run was cancelled or taken over")
    if len(journal.entries) == k:
        journal.entries.append(entry)


def _begin_wait(state: RunState) -> Journal:
    journal = _journal(state)
    with journal.lock:
        busy = journal.wait_active or journal.parked
        if not busy:
            journal.wait_active = True
    if busy:
        _flag(state, concurrent=True)
        raise ConcurrentWaitError(
            "Parallel waits are not supported: use batch_trigger_and_wait instead of "
            "running several *_and_wait calls or waits concurrently"
        )
    return journal


def _flag(state: RunState, *, parked: bool = False, concurrent: bool = False) -> None:
    """Record that the attempt parked and/or broke the one-wait rule.

    The thread that makes both true ends the parked run ``SYSTEM_FAILURE`` itself: with
    threads (``asyncio.to_thread``) the other wait may start or finish parking after the
    attempt's outcome was decided, and a parked run must not stay parked (SEMANTICS §3.4).
    The executing attempt does the same when it still sees both flags; the transition only
    applies to a run still ``WAITING``, so doing it twice changes nothing.
    """
    journal = _journal(state)
    with journal.lock:
        journal.parked = journal.parked or parked
        journal.concurrent = journal.concurrent or concurrent
        both = journal.parked and journal.concurrent
    if both:
        _fail_concurrent(state)


def _fail_concurrent(state: RunState) -> None:
    engine = current()
    error = TaskRunError("TASK_DID_CONCURRENT_WAIT", CONCURRENT_WAIT_MESSAGE)
    result = engine.store.transition(
        state.run_id,
        now_ms(),
        allowed=RunStatus.WAITING.value,
        status=RunStatus.SYSTEM_FAILURE.value,
        remove_timers=[TimerKind.RESUME.member(state.run_id)],
        fields={"error": dumps(error.to_dict())},
    )
    if result.ok:
        notify_waiters(engine, state.run_id)


def park(
    state: RunState,
    k: int,
    entry: dict[str, Any],
    *,
    members: list[str],
    due_ms: int | None,
    usage: dict[str, str],
    reason: str,
) -> None:
    """Record wait ``k`` and park the run unless the wait is already satisfied (then return).

    Metadata written before the wait is stored first: the resumed attempt reads it back,
    and its replay skips those writes (``metadata.py``)."""
    flush_metadata(state)
    result = current().store.park(
        state.run_id, state.token, now_ms(), k, dumps(entry),
        due_ms=due_ms, members=members,
        fields={**usage, **tracing.kept_fields(state.record)},  # the resume joins this trace
    )  # fmt: skip
    if result == "lost":
        raise LeaseLost("the run was cancelled or taken over")
    if result == "parked":
        _flag(state, parked=True)
        raise Park(reason)


def call_parkable(fn: Callable[[], T]) -> tuple[T | None, str | None]:
    """Call ``fn`` (the attempt's body): ``(result, None)``, or ``(None, reason)`` when the
    attempt parked at a durable wait."""
    try:
        return fn(), None
    except Park as parked:
        return None, parked.reason


def trigger_in_run(task_id: str, create: Callable[[str], tuple[str, bool]]) -> tuple[str, bool]:
    """Fire-and-forget trigger inside a run: journaled, with a deterministic child id."""
    state = _state("trigger")
    k, entry = _next(state, "trigger", task_id)
    if entry is not None:
        return str(entry["id"]), bool(entry.get("cached"))
    run_id, cached = create(derive_id("run_", state, k))
    _append(state, k, {"kind": "trigger", "target": task_id, "id": run_id, "cached": cached})
    return run_id, cached


BatchCreate = Callable[[list[str]], tuple[str, list[str], bool]]


def batch_in_run(target: str, count: int, create: BatchCreate) -> tuple[str, list[str], bool]:
    """Fire-and-forget batch inside a run: journaled, with deterministic child ids.
    ``create`` returns ``(batch id, run ids, cached)`` (cached: a batch key hit)."""
    state = _state("batch_trigger")
    k, entry = _next(state, "batch_trigger", target)
    if entry is not None:
        return entry["batch"], list(entry["runs"]), bool(entry.get("cached"))
    if not 0 < count <= 1000:
        return create([])  # raises BatchTriggerError with the count
    batch_id, run_ids, cached = create([derive_id("run_", state, k, i) for i in range(count)])
    _append(
        state,
        k,
        {
            "kind": "batch_trigger",
            "target": target,
            "batch": batch_id,
            "runs": run_ids,
            "cached": cached,
        },
    )
    return batch_id, run_ids, cached


def step(name: str, fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> Any:
    """Run ``fn`` once per attempt; on replay return its recorded JSON result."""
    state = _state("steps.run")
    k, entry = _next(state, "step", name)
    if entry is not None:
        return entry.get("result")
    result = to_jsonable(fn(*args, **kwargs), what=f"steps.run({name!r}) result")
    _append(state, k, {"kind": "step", "target": name, "result": result})
    return result


def token_id_for_run(create: Callable[[str], tuple[str, bool]]) -> tuple[str, bool]:
    """Inside a run, token creation is journaled with a deterministic id."""
    state = current_state()
    if state is None:
        return create(f"waitpoint_{uuid.uuid4().hex[:24]}")
    k, entry = _next(state, "create_token", "token")
    if entry is not None:
        return entry["id"], bool(entry.get("cached"))
    token_id, cached = create(derive_id("waitpoint_", state, k))
    _append(state, k, {"kind": "create_token", "target": "token", "id": token_id, "cached": cached})
    return token_id, cached
