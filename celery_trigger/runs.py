"""The runs API (SEMANTICS §11): retrieve, list, cancel, replay, reschedule, poll.

Example::

    run = ct.runs.retrieve(handle.id)
    for run in ct.runs.list(status=[ct.RunStatus.COMPLETED], tag="user_1"):
        print(run.id, run.output)
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from . import _metadata_ops as _ops
from . import realtime
from ._engine import control, run_queries, runlog
from ._engine import metadata as _meta
from ._engine.engine import Engine, current
from ._engine.run_queries import Cursor, RunFilter
from ._serialization import to_jsonable
from .auth import run_handle_token
from .errors import InvalidRunStateError, RunNotFoundError
from .logger import LogEntry, dropped_marker
from .options import Duration, normalize_tags, resolve_delay, utcnow
from .realtime import RunSubscription
from .result import BatchHandle, Run, RunHandle
from .status import RunStatus

MAX_PAGE = 100
DEFAULT_PAGE = 25
MAX_POLLS = 500
CANCEL_ERROR = control.CANCEL_ERROR


def _run_id(run: str | RunHandle | Run) -> str:
    if isinstance(run, (RunHandle, Run)):
        return run.id
    if not isinstance(run, str) or not run:
        raise TypeError("run must be a run id or a handle")
    return run


def logs(run: str | RunHandle | Run, *, limit: int = 1000) -> builtins.list[LogEntry]:
    """The run's own log (``logger.*`` records and failed attempts), oldest first: the newest
    ``limit`` entries, led by a marker entry when the per-run caps dropped older ones.
    Example: ``[e.message for e in ct.runs.logs(handle)]``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError("limit must be a positive int")
    dropped, rows = runlog.read(current(), _run_id(run), limit)
    entries = [LogEntry.from_dict(row) for row in rows]
    if dropped:
        kept = entries[len(entries) - limit + 1 :] if limit > 1 else []
        entries = [dropped_marker(dropped, entries[0] if entries else None), *kept]
    return entries


def retrieve(run: str | RunHandle | Run) -> Run:
    """Return the run's current state. Raises ``RunNotFoundError`` for an unknown id."""
    return run_queries.retrieve(current(), _run_id(run))


class RunPage:
    """A page of ``runs.list``; iterating it walks every matching run across pages."""

    def __init__(
        self,
        engine: Engine,
        filters: RunFilter,
        limit: int,
        cursor: Cursor | None = None,
    ) -> None:
        self._engine = engine
        self._filters = filters
        self._limit = limit
        self.data, self._next = run_queries.page(engine, filters, limit, cursor)

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

    Example: ``[r.id for r in ct.runs.list(status=ct.RunStatus.FAILED, limit=50)]``.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit!r}")
    statuses = [status] if isinstance(status, (str, RunStatus)) else builtins.list(status or [])
    filters = RunFilter(
        status=frozenset(RunStatus(s) for s in statuses),
        task_identifier=frozenset(
            {task_identifier} if isinstance(task_identifier, str) else task_identifier or []
        ),
        tags=(tag,) if isinstance(tag, str) else tuple(tag or []),
        batch=batch,
        created_from=from_,
        created_to=to,
    )
    for name, value in (("from_", from_), ("to", to)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise ValueError(f"{name} must be a timezone-aware datetime")
    return RunPage(current(), filters, limit)


def cancel(run: str | RunHandle | Run) -> dict[str, str]:
    """Cancel a run and, recursively, its children. A final run is left as it is.

    Example: ``ct.runs.cancel(handle.id)``.
    """
    run_id = _run_id(run)
    control.cancel_tree(current(), run_id)
    return {"id": run_id}


def replay(run: str | RunHandle | Run) -> RunHandle:
    """Start a new run of the same task with the original payload, tags and seed metadata."""
    engine = current()
    new_id, cached, task_id = control.replay(engine, _run_id(run))
    return RunHandle(
        id=new_id,
        public_access_token=run_handle_token(engine, new_id),
        is_cached=cached,
        task_identifier=task_id,
    )


def reschedule(run: str | RunHandle | Run, *, delay: Duration | datetime) -> Run:
    """Move a DELAYED run's start. Any other status raises ``InvalidRunStateError``."""
    run_id = _run_id(run)
    due = resolve_delay(delay, utcnow())
    if due is None:
        raise ValueError(f"Invalid delay: {delay!r} must resolve to a future time")
    result = control.reschedule(current(), run_id, int(due.timestamp() * 1000))
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
    bid = batch_id.batch_id if isinstance(batch_id, BatchHandle) else batch_id
    if not isinstance(bid, str) or not bid:
        raise TypeError("batch_id must be a batch id or a BatchHandle")
    return realtime.subscribe_batch(current(), bid, skip_columns=skip_columns, cursor=cursor)
