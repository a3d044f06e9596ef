"""Public result types: run and batch handles, ``Result``/``BatchResult`` and the ``Run`` record.

``Run.from_record`` is the one place that reads a stored run hash into the public shape
(SEMANTICS §11.1); every surface (retrieve, list, poll, results of child runs) uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from ._serialization import loads
from .errors import SubtaskUnwrapError, TaskRunError
from .options import format_duration
from .status import EXECUTING_STATUSES, FINAL_STATUSES, QUEUED_STATUSES, RunStatus

O = TypeVar("O")  # noqa: E741 - the output type parameter, named as in the API docs


class RunHandle:
    """What ``trigger`` returns. Example: ``handle = my_task.trigger({...}); handle.id``.

    ``public_access_token`` (a JWT scoped to this run, valid one hour) is signed on first
    access, so triggering stays cheap when nobody reads it.
    """

    __slots__ = ("_token", "_token_factory", "id", "is_cached", "task_identifier")

    def __init__(
        self,
        id: str,
        public_access_token: str | None = None,
        is_cached: bool = False,
        task_identifier: str = "",
        token_factory: Callable[[], str | None] | None = None,
    ) -> None:
        self.id = id
        self.is_cached = is_cached
        self.task_identifier = task_identifier
        self._token = public_access_token
        self._token_factory = token_factory

    @property
    def public_access_token(self) -> str | None:
        if self._token is None and self._token_factory is not None:
            self._token = self._token_factory()
            self._token_factory = None
        return self._token

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RunHandle) and (self.id, self.is_cached) == (
            other.id,
            other.is_cached,
        )

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return (
            f"RunHandle(id={self.id!r}, is_cached={self.is_cached!r}, "
            f"task_identifier={self.task_identifier!r})"
        )


@dataclass(frozen=True)
class BatchHandle:
    """What ``batch_trigger`` returns: the batch id and its run ids in item order."""

    batch_id: str
    run_count: int
    runs: list[str]
    public_access_token: str | None = None
    is_cached: bool = False


@dataclass(frozen=True)
class Result(Generic[O]):
    """The outcome of a waited-for child run."""

    ok: bool
    id: str
    task_identifier: str
    output: O | None = None
    error: TaskRunError | None = None

    def unwrap(self) -> O:
        """Return ``output`` or raise ``SubtaskUnwrapError`` carrying the child's error."""
        if self.ok:
            return self.output  # type: ignore[return-value]
        raise SubtaskUnwrapError(self.task_identifier, self.id, self.error)


@dataclass(frozen=True)
class BatchResult(Generic[O]):
    """Results of a waited-for batch, in item order."""

    id: str
    runs: list[Result[O]]

    def __iter__(self) -> Iterator[Result[O]]:
        return iter(self.runs)

    def __len__(self) -> int:
        return len(self.runs)

    def __getitem__(self, index: int) -> Result[O]:
        return self.runs[index]


def ms_to_dt(value: str | None) -> datetime | None:
    if not value or value == "0":
        return None
    return datetime.fromtimestamp(int(float(value)) / 1000, tz=timezone.utc)


def _int(value: str | None, default: int = 0) -> int:
    return int(float(value)) if value else default


@dataclass(frozen=True)
class RunAttempt:
    """One attempt of a run: its number and, when it failed, its error."""

    number: int
    error: TaskRunError | None = None


def _attempts(rec: dict[str, str]) -> list[RunAttempt]:
    errors = {
        int(e["attempt"]): TaskRunError.from_dict(e) for e in loads(rec.get("attempt_errors")) or []
    }
    return [RunAttempt(n, errors.get(n)) for n in range(1, _int(rec.get("attempt")) + 1)]


@dataclass(frozen=True)
class Run:
    """A run as ``runs.retrieve`` returns it (SEMANTICS §11.1)."""

    id: str
    status: RunStatus
    task_identifier: str
    payload: Any
    output: Any
    error: TaskRunError | None
    tags: list[str]
    metadata: dict[str, Any] | None
    created_at: datetime | None
    updated_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    delayed_until: datetime | None
    ttl: str | None
    expired_at: datetime | None
    idempotency_key: str | None
    attempt_count: int
    duration_ms: int
    cost_in_cents: float
    base_cost_in_cents: float
    depth: int
    batch_id: str | None
    parent_id: str | None
    root_id: str | None
    is_test: bool
    is_replay: bool
    queue: str | None = None
    concurrency_key: str | None = None
    machine: str | None = None
    max_attempts: int | None = None
    max_duration: int | None = None
    #: the version / region the run was triggered for (D-21); None when not given
    version: str | None = None
    region: str | None = None
    #: the priority given at trigger time, in seconds (None when 0)
    priority: float | None = None
    children: list[str] = field(default_factory=list)
    #: keys of the realtime streams the run publishes (``metadata.stream``), in creation order
    realtime_streams: list[str] = field(default_factory=list)
    #: every attempt so far, in order, with the error of each failed one
    attempts: list[RunAttempt] = field(default_factory=list)

    @property
    def is_queued(self) -> bool:
        return self.status in QUEUED_STATUSES

    @property
    def is_executing(self) -> bool:
        return self.status in EXECUTING_STATUSES

    @property
    def is_waiting(self) -> bool:
        return self.status is RunStatus.WAITING

    @property
    def is_completed(self) -> bool:
        """True for every final status (decision D-6)."""
        return self.status in FINAL_STATUSES

    @property
    def is_success(self) -> bool:
        return self.status is RunStatus.COMPLETED

    @property
    def is_failed(self) -> bool:
        return self.is_completed and self.status is not RunStatus.COMPLETED

    @property
    def is_cancelled(self) -> bool:
        return self.status is RunStatus.CANCELED

    @classmethod
    def from_record(cls, rec: dict[str, str], children: list[str] | None = None) -> Run:
        status = RunStatus(rec.get("status", RunStatus.QUEUED.value))
        error = rec.get("error")
        ttl = rec.get("ttl")
        meta_text = rec.get("meta") or rec.get("seed_meta")
        return cls(
            id=rec["id"],
            status=status,
            task_identifier=rec.get("task", ""),
            payload=loads(rec.get("payload")),
            output=loads(rec.get("output")) if status is RunStatus.COMPLETED else None,
            error=TaskRunError.from_dict(loads(error))
            if error and status is not RunStatus.COMPLETED
            else None,
            tags=loads(rec.get("tags")) or [],
            metadata=loads(meta_text) if meta_text else None,
            created_at=ms_to_dt(rec.get("created")),
            updated_at=ms_to_dt(rec.get("updated")),
            started_at=ms_to_dt(rec.get("started")),
            finished_at=ms_to_dt(rec.get("finished")),
            delayed_until=ms_to_dt(rec.get("delay_until")),
            ttl=format_duration(float(ttl)) if ttl else None,
            expired_at=ms_to_dt(rec.get("expired")),
            idempotency_key=rec.get("idem") or None,
            attempt_count=_int(rec.get("attempt")),
            duration_ms=_int(rec.get("duration_ms")),
            cost_in_cents=float(rec.get("cost") or 0),
            base_cost_in_cents=float(rec.get("base_cost") or 0),
            depth=_int(rec.get("depth")),
            batch_id=rec.get("batch") or None,
            parent_id=rec.get("parent") or None,
            root_id=rec.get("root") or None,
            is_test=rec.get("is_test") == "1",
            is_replay=rec.get("is_replay") == "1",
            queue=rec.get("queue") or None,
            concurrency_key=rec.get("ckey") or None,
            machine=rec.get("machine") or None,
            max_attempts=_int(rec.get("max_attempts")) or None,
            max_duration=_int(rec.get("max_duration")) or None,
            version=rec.get("version") or None,
            region=rec.get("region") or None,
            priority=(_int(rec.get("priority")) / 1000) or None,
            children=list(children or []),
            realtime_streams=loads(rec.get("streams")) or [],
            attempts=_attempts(rec),
        )

    def to_json(self, skip_columns: Iterable[str] = ()) -> dict[str, Any]:
        """The run as a JSON-ready dict (the realtime run object served over SSE): every
        field above plus the ``is_*`` helpers; times as ISO 8601 strings; ``skip_columns``
        (e.g. ``["payload", "output"]``) leaves heavy fields out."""
        skip = set(skip_columns)
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in skip:
                continue
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat().replace("+00:00", "Z")
            elif isinstance(value, RunStatus):
                value = value.value
            elif isinstance(value, TaskRunError):
                value = value.to_dict()
            elif f.name == "attempts":
                value = [
                    {"number": a.number, "error": a.error.to_dict() if a.error else None}
                    for a in value
                ]
            out[f.name] = value
        for name in (
            "is_queued",
            "is_executing",
            "is_waiting",
            "is_completed",
            "is_success",
            "is_failed",
            "is_cancelled",
        ):
            out[name] = getattr(self, name)
        return out

    def to_result(self) -> Result[Any]:
        """The ``Result`` a waiting parent receives for this (final) run."""
        return Result(
            ok=self.status is RunStatus.COMPLETED,
            id=self.id,
            task_identifier=self.task_identifier,
            output=self.output,
            error=None if self.status is RunStatus.COMPLETED else self.error,
        )


__all__ = ["BatchHandle", "BatchResult", "Result", "Run", "RunHandle"]
