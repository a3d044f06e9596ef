"""Durable execution: the journal, replay, parking and every durable operation.

Invariants (DESIGN §4, decision D-17):
- Each durable operation of an attempt gets the next ordinal ``k``. If the journal has an
  entry ``k`` (the run resumed), the operation is answered from it; its kind and target must
  match, else ``NonDeterminismError`` (the run fails, not retried).
- Child run and token ids derive from ``(run id, attempt, k, index)``, so a crash between a
  trigger and its journal write cannot create a second child.
- A wait that is not satisfied parks the run in one script (journal entry, wake-up
  registration, status ``WAITING``, lease released) and raises ``Park``, a ``BaseException``
  that user ``except Exception`` blocks cannot swallow. Only this module raises or catches it.
- The journal belongs to the attempt: a retry starts with an empty journal.
- In-process sleeps (waits up to the threshold) take no ordinal; replay skips those before
  the resume point, since they already happened.
- Metadata mutations and ``tags.add`` take no ordinal either: their effects are stored
  before the park (metadata is flushed first, tags are written at the call), so replay
  skips them instead of recording a journal entry per write (``_engine/metadata.py``).
- At most one durable wait is outstanding: a second one raises ``ConcurrentWaitError`` and the
  run ends ``SYSTEM_FAILURE`` (SEMANTICS §3.4).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._engine.metadata import flush_state as flush_metadata
from ._engine.state import RunState, current_state
from ._serialization import dumps, loads, to_jsonable
from .errors import ConcurrentWaitError, NonDeterminismError, TaskRunError
from .result import BatchResult, Result, Run, RunHandle, ms_to_dt

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


@dataclass
class Journal:
    """The attempt's journal as loaded at claim time plus the replay cursor."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    replay_len: int = 0
    pos: int = 0
    wait_active: bool = False
    parked: bool = False
    concurrent: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def replaying(self) -> bool:
        return self.pos < self.replay_len


def load_journal(raw: Sequence[str]) -> Journal:
    entries = [loads(item) for item in raw]
    return Journal(entries=entries, replay_len=len(entries))


def _state(what: str) -> RunState:
    state = current_state()
    if state is None:
        raise RuntimeError(f"{what} can only be used from inside a task run")
    return state


def _journal(state: RunState) -> Journal:
    journal: Journal | None = state.extra.get("journal")
    if journal is None:
        journal = state.extra["journal"] = Journal()
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
    from ._setup import current

    journal = _journal(state)
    if current().store.journal_append(state.run_id, state.token, k, dumps(entry)) < 0:
        raise LeaseLost("the run was cancelled or taken over")
    if len(journal.entries) == k:
        journal.entries.append(entry)


# waits ----------------------------------------------------------------------------------
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
    from ._engine.waiters import notify_waiters
    from ._setup import current

    engine = current()
    error = TaskRunError("TASK_DID_CONCURRENT_WAIT", CONCURRENT_WAIT_MESSAGE)
    result = engine.store.transition(
        state.run_id,
        int(time.time() * 1000),
        allowed="WAITING",
        status="SYSTEM_FAILURE",
        remove_timers=[f"resume|{state.run_id}"],
        fields={"error": dumps(error.to_dict())},
    )
    if result.ok:
        notify_waiters(engine, state.run_id)


def _usage_fields(state: RunState) -> dict[str, str]:
    totals = state.extra.get("totals") or {}
    started = state.extra.get("started_mono")
    attempt_ms = int(state.extra.get("attempt_ms_before", 0))
    elapsed = int((time.monotonic() - started) * 1000) if started else 0
    rate = state.ctx.machine.cents_per_ms
    return {
        "duration_ms": str(int(totals.get("duration_ms", 0)) + elapsed),
        "cost": repr(float(totals.get("cost", 0.0)) + elapsed * rate),
        "attempt_ms": str(attempt_ms + elapsed),
    }


def _wait(
    state: RunState,
    k: int,
    entry: dict[str, Any],
    first: bool,
    *,
    members: list[str],
    due_ms: int | None,
    info: dict[str, Any],
    reason: str,
) -> None:
    """Park at wait ``k`` unless it is satisfied; return once it is (hooks around it)."""
    from ._setup import current

    engine = current()
    journal = _begin_wait(state)
    try:
        is_resume_point = not first and k == journal.replay_len - 1
        if first:
            _call_wait_hooks(state, "on_wait", info)
        watch = state.watch
        if watch is not None:
            engine.watchdog.pause(watch)
        # Metadata written before the wait is stored before the run can resume: the resumed
        # attempt reads it back, and its replay skips those writes (_engine/metadata.py).
        flush_metadata(state)
        result = engine.store.park(
            state.run_id,
            state.token,
            int(time.time() * 1000),
            k,
            dumps(entry),
            due_ms=due_ms,
            members=members,
            fields=_usage_fields(state),
        )
        if result == "lost":
            raise LeaseLost("the run was cancelled or taken over")
        if result == "parked":
            _flag(state, parked=True)
            raise Park(reason)
        if watch is not None:
            engine.watchdog.resume(watch)
        if len(journal.entries) == k:
            journal.entries.append(entry)
        if first or is_resume_point:
            _call_wait_hooks(state, "on_resume", info)
    finally:
        journal.wait_active = False


def _call_wait_hooks(state: RunState, kind: str, info: dict[str, Any]) -> None:
    from ._definition import get
    from ._engine import hooks as hk

    defn = get(state.task_id)
    hk.run_all(
        hk.chain(kind, defn),
        swallow=True,
        payload=state.extra.get("payload"),
        ctx=state.ctx,
        wait=info,
        task=defn,
    )


def wait_duration(
    seconds: float,
    *,
    idempotency_key: str | None = None,
    idempotency_key_ttl: float | None = None,
    what: str = "wait.for_",
) -> None:
    """Sleep in-process up to the threshold; park longer waits until the wake-up time."""
    from ._setup import current

    state = _state(what)
    engine = current()
    if seconds <= 0:
        return
    if seconds <= engine.settings.wait_threshold:
        # An in-process sleep before the resume point already happened: replay skips it.
        if not _journal(state).replaying:
            time.sleep(seconds)
        return
    k, entry = _next(state, "duration", "duration")
    first = entry is None
    if entry is None:
        due = int(time.time() * 1000 + seconds * 1000)
        if idempotency_key is not None:
            due = engine.store.wait_key(
                idempotency_key,
                due,
                int(idempotency_key_ttl * 1000) if idempotency_key_ttl else None,
            )
        entry = {"kind": "duration", "target": "duration", "due": due}
    due = int(entry["due"])
    if due <= time.time() * 1000 and first:
        # Already passed (an idempotency key of an earlier wait): not a real wait, but it
        # took ordinal k, so it is recorded to keep the journal aligned with the ordinals.
        _append(state, k, entry)
        return
    _wait(
        state,
        k,
        entry,
        first,
        members=[],
        due_ms=due,
        info={"type": "duration", "date": ms_to_dt(str(due))},
        reason=f"waiting until {ms_to_dt(str(due))}",
    )


def wait_token(token_id: str) -> dict[str, str]:
    """Park until the token is completed or times out; return its record."""
    from ._setup import current
    from .errors import TokenNotFoundError

    state = _state("wait.for_token")
    engine = current()
    k, entry = _next(state, "token", token_id)
    first = entry is None
    if engine.store.get_token(token_id) is None:
        raise TokenNotFoundError(f"no waitpoint token with id {token_id!r}")
    if entry is None:
        entry = {"kind": "token", "target": token_id}
    _wait(
        state,
        k,
        entry,
        first,
        members=[f"token:{token_id}"],
        due_ms=None,
        info={"type": "token", "token": token_id},
        reason=f"waiting for token {token_id}",
    )
    record = engine.store.get_token(token_id)
    assert record is not None
    return record


# children ---------------------------------------------------------------------------------
def _results(run_ids: Sequence[str]) -> list[Result[Any]]:
    results = _final_results(run_ids, require_final=False)
    assert results is not None
    return results


def _final_results(
    run_ids: Sequence[str], *, require_final: bool = True
) -> list[Result[Any]] | None:
    """The children's results from one read of their records; ``None`` when
    ``require_final`` and one of them is not final yet."""
    from ._setup import current
    from .status import FINAL_STATUSES, RunStatus

    records = current().store.get_runs(run_ids)
    out: list[Result[Any]] = []
    for run_id, record in zip(run_ids, records, strict=True):
        if record is None:
            out.append(
                Result(
                    ok=False,
                    id=run_id,
                    task_identifier="",
                    error=TaskRunError("RUN_NOT_FOUND", f"run {run_id} vanished"),
                )
            )
            continue
        if require_final and RunStatus(record["status"]) not in FINAL_STATUSES:
            return None
        out.append(Run.from_record(record).to_result())
    return out


def trigger_in_run(task_id: str, create: Callable[[str], tuple[str, bool]]) -> RunHandle:
    """Fire-and-forget trigger inside a run: journaled, with a deterministic child id."""
    state = _state("trigger")
    k, entry = _next(state, "trigger", task_id)
    if entry is not None:
        return RunHandle(
            id=entry["id"], is_cached=bool(entry.get("cached")), task_identifier=task_id
        )
    run_id, cached = create(derive_id("run_", state, k))
    _append(state, k, {"kind": "trigger", "target": task_id, "id": run_id, "cached": cached})
    return RunHandle(id=run_id, is_cached=cached, task_identifier=task_id)


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


def trigger_and_wait(task_id: str, create: Callable[[str], tuple[str, bool]]) -> Result[Any]:
    """Trigger one child (first time only) and wait for its final outcome."""
    state = _state("trigger_and_wait")
    k, entry = _next(state, "task", task_id)
    first = entry is None
    if entry is None:
        if _journal(state).wait_active:
            _begin_wait(state)  # raises ConcurrentWaitError
        run_id, _ = create(derive_id("run_", state, k))
        entry = {"kind": "task", "target": task_id, "runs": [run_id]}
    run_id = entry["runs"][0]
    info = {"type": "task", "run_id": run_id}
    if not first:
        done = _final_results([run_id])
        if done is not None:
            _mark_done(state, k, info)
            return done[0]
    _wait(
        state,
        k,
        entry,
        first,
        members=[run_id],
        due_ms=None,
        info=info,
        reason=f"waiting for {task_id} {run_id}",
    )
    return _results([run_id])[0]


def batch_trigger_and_wait(target: str, count: int, create: BatchCreate) -> BatchResult[Any]:
    """Trigger a batch (first time only) and wait until every child is final."""
    state = _state("batch_trigger_and_wait")
    k, entry = _next(state, "batch", target)
    first = entry is None
    if entry is None:
        if _journal(state).wait_active:
            _begin_wait(state)
        ids = [derive_id("run_", state, k, i) for i in range(count)] if 0 < count <= 1000 else []
        batch_id, run_ids, _ = create(ids)
        entry = {"kind": "batch", "target": target, "batch": batch_id, "runs": run_ids}
    runs: list[str] = entry["runs"]
    info = {"type": "batch", "batch_id": entry["batch"], "run_count": len(runs)}
    if not first:
        done = _final_results(runs)
        if done is not None:  # a resume: one read of the children answers the wait
            _mark_done(state, k, info)
            return BatchResult(id=entry["batch"], runs=done)
    _wait(
        state,
        k,
        entry,
        first,
        members=list(dict.fromkeys(runs)),
        due_ms=None,
        info=info,
        reason=f"waiting for batch {entry['batch']} ({len(runs)} runs)",
    )
    return BatchResult(id=entry["batch"], runs=_results(runs))


def _mark_done(state: RunState, k: int, info: dict[str, Any]) -> None:
    """A replayed wait found satisfied: fire on_resume at the point where the run parked,
    with the same ``wait`` description on_wait got."""
    journal = _journal(state)
    if k == journal.replay_len - 1:
        _call_wait_hooks(state, "on_resume", info)


# steps and tokens -------------------------------------------------------------------------
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
        import uuid

        return create(f"waitpoint_{uuid.uuid4().hex[:24]}")
    k, entry = _next(state, "create_token", "token")
    if entry is not None:
        return entry["id"], bool(entry.get("cached"))
    token_id, cached = create(derive_id("waitpoint_", state, k))
    _append(state, k, {"kind": "create_token", "target": "token", "id": token_id, "cached": cached})
    return token_id, cached
