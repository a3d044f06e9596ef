"""The runs API (SEMANTICS §11): retrieve, list, cancel, replay, reschedule, poll.

Example::

    run = ct.runs.retrieve(handle.id)
    for run in ct.runs.list(status=["COMPLETED"], tag="user_1"):
        print(run.id, run.output)
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ._serialization import dumps, loads
from ._setup import Trigger, current
from .errors import InvalidRunStateError, RunNotFoundError, TaskRunError
from .options import Duration, normalize_tags, resolve_delay, utcnow
from .result import BatchHandle, Run, RunHandle
from .status import FINAL_STATUSES, RunStatus

if TYPE_CHECKING:
    from .realtime import RunSubscription

MAX_PAGE = 100
DEFAULT_PAGE = 25
MAX_POLLS = 500
CANCEL_ERROR = TaskRunError("TASK_RUN_CANCELLED", "Canceled by user")


def _run_id(run: str | RunHandle | Run) -> str:
    if isinstance(run, (RunHandle, Run)):
        return run.id
    if not isinstance(run, str) or not run:
        raise TypeError("run must be a run id or a handle")
    return run


def retrieve(run: str | RunHandle | Run) -> Run:
    """Return the run's current state. Raises ``RunNotFoundError`` for an unknown id."""
    engine = current()
    run_id = _run_id(run)
    record = engine.store.get_run(run_id)
    if record is None:
        raise RunNotFoundError(f"no run with id {run_id!r}")
    return Run.from_record(record, engine.store.children(run_id))


class RunPage:
    """A page of ``runs.list``; iterating it walks every matching run across pages."""

    def __init__(
        self,
        engine: Trigger,
        filters: dict[str, Any],
        limit: int,
        cursor: tuple[int, str] | None = None,
    ) -> None:
        self._engine = engine
        self._filters = filters
        self._limit = limit
        self.data, self._next = _fetch(engine, filters, limit, cursor)

    def has_next_page(self) -> bool:
        return self._next is not None

    def get_next_page(self) -> RunPage:
        if self._next is None:
            raise StopIteration("no next page")
        return RunPage(self._engine, self._filters, self._limit, self._next)

    def __iter__(self) -> Iterator[Run]:
        page: RunPage | None = self
        while page is not None:
            yield from page.data
            page = page.get_next_page() if page.has_next_page() else None

    def __len__(self) -> int:
        return len(self.data)


def _matches(run: Run, f: dict[str, Any]) -> bool:
    if f["status"] and run.status not in f["status"]:
        return False
    if f["task_identifier"] and run.task_identifier not in f["task_identifier"]:
        return False
    if f["tags"] and not set(f["tags"]) & set(run.tags):
        return False
    if f["batch"] and run.batch_id != f["batch"]:
        return False
    created = run.created_at
    if f["from"] is not None and (created is None or created < f["from"]):
        return False
    return not (f["to"] is not None and (created is None or created > f["to"]))


def _fetch(
    engine: Trigger, f: dict[str, Any], limit: int, cursor: tuple[int, str] | None
) -> tuple[builtins.list[Run], tuple[int, str] | None]:
    # ``builtins.list``: this module's public ``list`` function shadows the builtin.
    index = f["tags"][0] if len(f["tags"]) == 1 else None
    found: builtins.list[Run] = []
    last = cursor  # position of the last run on this page: the next page starts after it
    while True:
        ids = engine.store.list_run_ids(index=index, before=cursor, count=limit * 2)
        if not ids:
            return found, None
        records = engine.store.get_runs([i for i, _ in ids])
        for (run_id, score), record in zip(ids, records, strict=True):
            cursor = (score, run_id)
            if record is None:
                continue
            run = Run.from_record(record)
            if _matches(run, f):
                if len(found) == limit:
                    # One more match exists, so a next page does (no trailing empty page).
                    return found, last
                found.append(run)
                last = cursor


def list(
    *,
    status: RunStatus | str | Sequence[RunStatus | str] | None = None,
    task_identifier: str | Sequence[str] | None = None,
    tag: str | Sequence[str] | None = None,
    batch: str | None = None,
    from_: datetime | None = None,
    to: datetime | None = None,
    limit: int = DEFAULT_PAGE,
) -> RunPage:
    """List runs newest first; the page iterates across all pages.

    Example: ``[r.id for r in ct.runs.list(status="FAILED", limit=50)]``.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit!r}")
    statuses = [status] if isinstance(status, (str, RunStatus)) else builtins.list(status or [])
    filters = {
        "status": {RunStatus(s) for s in statuses},
        "task_identifier": {task_identifier}
        if isinstance(task_identifier, str)
        else set(task_identifier or []),
        "tags": [tag] if isinstance(tag, str) else [*(tag or [])],
        "batch": batch,
        "from": from_,
        "to": to,
    }
    for name, value in (("from_", from_), ("to", to)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise ValueError(f"{name} must be a timezone-aware datetime")
    return RunPage(current(), filters, limit)


def _cancel_one(engine: Trigger, run_id: str) -> bool:
    from . import _runtime
    from ._trigger import now_ms, timer

    record = engine.store.get_run(run_id)
    if record is None or RunStatus(record["status"]) in FINAL_STATUSES:
        return False
    result = engine.store.transition(
        run_id,
        now_ms(),
        allowed="*",
        status=RunStatus.CANCELED.value,
        remove_timers=[timer(k, run_id) for k in ("enqueue", "ttl", "retry", "pub", "resume")],
        fields={"error": dumps(CANCEL_ERROR.to_dict())},
        pending_task=record["task"],
    )
    if result.ok:
        from ._engine import concurrency
        from ._engine.waiters import notify_waiters

        notify_waiters(engine, run_id)
        if record["status"] != "EXECUTING":  # an executing attempt releases when it stops
            concurrency.release(engine, result.record)  # its slot, or its place in line
        if record["status"] in ("EXECUTING", "QUEUED"):
            _runtime.revoke(engine, run_id)
    return result.ok


def cancel(run: str | RunHandle | Run) -> dict[str, str]:
    """Cancel a run and, recursively, its children. A final run is left as it is.

    Example: ``ct.runs.cancel(handle.id)``.
    """
    engine = current()
    run_id = _run_id(run)
    if engine.store.get_run(run_id) is None:
        raise RunNotFoundError(f"no run with id {run_id!r}")
    pending = [run_id]
    seen: set[str] = set()
    while pending:
        target = pending.pop()
        if target in seen:
            continue
        seen.add(target)
        _cancel_one(engine, target)
        pending.extend(engine.store.children(target))
    return {"id": run_id}


def replay(run: str | RunHandle | Run) -> RunHandle:
    """Start a new run of the same task with the original payload, tags and seed metadata."""
    from ._trigger import create_and_publish, prepare

    engine = current()
    run_id = _run_id(run)
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
    if record.get("queue") and not record["queue"].startswith("task/"):
        options["queue"] = record["queue"]
    prepared = prepare(engine, record["task"], loads(record.get("payload")), options, parse=False)
    prepared.new.fields["is_replay"] = "1"
    prepared.new.fields["is_test"] = record.get("is_test", "0")
    prepared.new.fields["replayed_from"] = run_id
    new_id, cached = create_and_publish(engine, [prepared])[0]
    from .auth import run_handle_token

    return RunHandle(
        id=new_id,
        public_access_token=run_handle_token(engine, new_id),
        is_cached=cached,
        task_identifier=record["task"],
    )


def reschedule(run: str | RunHandle | Run, *, delay: Duration | datetime) -> Run:
    """Move a DELAYED run's start. Any other status raises ``InvalidRunStateError``."""
    from ._trigger import now_ms, timer

    engine = current()
    run_id = _run_id(run)
    due = resolve_delay(delay, utcnow())
    if due is None:
        raise ValueError(f"Invalid delay: {delay!r} must resolve to a future time")
    due_ms = int(due.timestamp() * 1000)
    result = engine.store.transition(
        run_id,
        now_ms(),
        allowed="DELAYED",
        add_timers=[(timer("enqueue", run_id), due_ms)],
        fields={"delay_until": str(due_ms)},
    )
    if not result.ok:
        if not result.status:
            raise RunNotFoundError(f"no run with id {run_id!r}")
        raise InvalidRunStateError(
            f"Cannot reschedule a run that is not delayed (status {result.status})"
        )
    return retrieve(run_id)


def poll(run: str | RunHandle | Run, *, poll_interval_ms: int = 1000) -> Run:
    """Retrieve every ``poll_interval_ms`` until the run is final (at most 500 times)."""
    run_id = _run_id(run)
    for _ in range(MAX_POLLS):
        state = retrieve(run_id)
        if state.is_completed:
            return state
        time.sleep(poll_interval_ms / 1000)
    raise TimeoutError(f"Run {run_id} did not complete after {MAX_POLLS} attempts")


def update_metadata(
    run: str | RunHandle | Run,
    metadata: dict[str, Any] | None = None,
    *,
    operations: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """Change a run's stored metadata from outside it (REST ``PUT /runs/{id}/metadata``).

    ``metadata`` replaces the document; ``operations`` (``{"type": "set"|"delete"|"append"|
    "remove"|"increment"|"update", "key": ..., "value": ...}``) are applied after it, in one
    atomic step with the run's own writes. Accepted until one hour after the run finished
    (then ``InvalidRunStateError``). Returns the stored document. Example:
    ``ct.runs.update_metadata(run_id, operations=[{"type": "increment", "key": "n",
    "value": 1}])``.
    """
    from ._engine import metadata as _meta
    from ._engine import metadata_ops as _ops
    from ._serialization import to_jsonable

    doc = None if metadata is None else to_jsonable(_ops.check_document(metadata))
    if doc is not None:
        _ops.check_document(doc)
    ops = [_ops.check_operation(to_jsonable(op, what="operation")) for op in operations]
    return _meta.update_run(_run_id(run), doc, ops)


def subscribe_to_run(
    run: str | RunHandle | Run,
    *,
    stop_on_completion: bool = True,
    skip_columns: Iterable[str] | None = None,
    cursor: str | None = None,
) -> RunSubscription[Run]:
    """Follow one run live (RT-1, RT-2): yields its current state, then a new ``Run`` on
    every change (status, metadata, tags, output); ends after the final state unless
    ``stop_on_completion=False``. ``skip_columns`` (e.g. ``["payload", "output"]``) leaves
    heavy fields out. Raises ``RunNotFoundError`` for an unknown id.

    Example::

        for run in ct.runs.subscribe_to_run(handle.id):
            print(run.status, (run.metadata or {}).get("progress"))
    """
    from . import realtime

    return realtime.subscribe_run(
        current(),
        _run_id(run),
        stop_on_completion=bool(stop_on_completion),
        skip_columns=skip_columns,
        cursor=cursor,
    )


def subscribe_to_runs_with_tag(
    tag_or_tags: str | Sequence[str],
    *,
    created_at: Duration = "24h",
    skip_columns: Iterable[str] | None = None,
    cursor: str | None = None,
) -> RunSubscription[Run]:
    """Follow every run carrying *all* the given tags and created within ``created_at``
    (default 24 hours, at most a week), as they are created and change (RT-3). Never ends
    by itself: call ``unsubscribe()``.

    Example: ``for run in ct.runs.subscribe_to_runs_with_tag(["user_1", "export"]): ...``
    """
    from . import realtime

    if not isinstance(tag_or_tags, str):
        tag_or_tags = builtins.list(tag_or_tags)
    tags = normalize_tags(tag_or_tags)
    if not tags:
        raise ValueError("subscribe_to_runs_with_tag needs at least one tag")
    return realtime.subscribe_tags(
        current(), tags, created_at=created_at, skip_columns=skip_columns, cursor=cursor
    )


def subscribe_to_batch(
    batch_id: str | BatchHandle,
    *,
    skip_columns: Iterable[str] | None = None,
    cursor: str | None = None,
) -> RunSubscription[Run]:
    """Follow every run of a batch. Never ends by itself: call ``unsubscribe()``.

    Example: ``for run in ct.runs.subscribe_to_batch(batch.batch_id): ...``
    """
    from . import realtime

    bid = batch_id.batch_id if isinstance(batch_id, BatchHandle) else batch_id
    if not isinstance(bid, str) or not bid:
        raise TypeError("batch_id must be a batch id or a BatchHandle")
    return realtime.subscribe_batch(current(), bid, skip_columns=skip_columns, cursor=cursor)
