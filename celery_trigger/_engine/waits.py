"""Durable waits: durations, tokens and children (``*_and_wait``), with their hooks.

Each wait takes the next journal ordinal (``journal.py``): on replay it is answered from the
journal; otherwise it parks the run through ``journal.park`` until what it waits for
happens. Waits up to ``trigger_wait_threshold`` seconds sleep in-process instead and keep
the slot. ``on_wait``/``on_resume`` fire once per real wait.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from .._vocab import FINAL_STATUSES, TOKEN_MEMBER_PREFIX, RunStatus
from ..errors import TaskRunError, TokenNotFoundError
from ..result import BatchResult, Result, Run, ms_to_dt
from . import hooks as hk
from . import registry
from .engine import current
from .journal import (
    BatchCreate,
    _append,
    _begin_wait,
    _journal,
    _next,
    _state,
    derive_id,
    park,
)
from .state import RunState


def _usage_fields(state: RunState) -> dict[str, str]:
    totals = state.totals
    started = state.started_mono
    attempt_ms = state.attempt_ms_before
    elapsed = int((time.monotonic() - started) * 1000) if started else 0
    rate = state.ctx.machine.cents_per_ms
    return {
        "duration_ms": str(totals.duration_ms + elapsed),
        "cost": repr(totals.cost + elapsed * rate),
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
    engine = current()
    journal = _begin_wait(state)
    try:
        is_resume_point = not first and k == journal.replay_len - 1
        if first:
            _call_wait_hooks(state, "on_wait", info)
        watch = state.watch
        if watch is not None:
            engine.watchdog.pause(watch)
        park(
            state, k, entry, members=members, due_ms=due_ms, usage=_usage_fields(state),
            reason=reason,
        )  # fmt: skip
        if watch is not None:
            engine.watchdog.resume(watch)
        if len(journal.entries) == k:
            journal.entries.append(entry)
        if first or is_resume_point:
            _call_wait_hooks(state, "on_resume", info)
    finally:
        journal.wait_active = False


def _call_wait_hooks(state: RunState, kind: str, info: dict[str, Any]) -> None:
    defn = registry.get(state.task_id)
    hk.run_all(
        hk.chain(kind, defn),
        swallow=True,
        payload=state.payload,
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
        members=[TOKEN_MEMBER_PREFIX + token_id],
        due_ms=None,
        info={"type": "token", "token": token_id},
        reason=f"waiting for token {token_id}",
    )
    record = engine.store.get_token(token_id)
    assert record is not None
    return record


def _results(run_ids: Sequence[str]) -> list[Result[Any]]:
    results = _final_results(run_ids, require_final=False)
    assert results is not None
    return results


def _final_results(
    run_ids: Sequence[str], *, require_final: bool = True
) -> list[Result[Any]] | None:
    """The children's results from one read of their records; ``None`` when
    ``require_final`` and one of them is not final yet."""
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
