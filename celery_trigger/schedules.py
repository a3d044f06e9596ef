"""Scheduled tasks (SEMANTICS §10): cron schedules fired by every worker's timer service.

Declarative: the schedule lives in code and is synced when a worker starts (or by
``celery -A proj trigger schedules sync``)::

    @ct.schedules.task(id="daily-report", cron={"pattern": "0 9 * * MON-FRI",
                                                "timezone": "Europe/Paris"})
    def daily_report(payload: ct.schedules.ScheduledPayload) -> None:
        print(payload.timestamp, payload.last_timestamp, payload.upcoming[0])

Imperative: application code attaches schedules to a scheduled task, one per deduplication
key (a second ``create`` with the same key updates it)::

    ct.schedules.create(task=reminder.id, cron="0 8 * * *", timezone="America/New_York",
                        external_id=user.id, deduplication_key=f"reminder-{user.id}")

This module validates and delegates; the engine is ``_engine/schedules.py`` and the cron
dialect ``_engine/cron.py``. Bad input (cron, zone, task, page) raises at the call with
nothing written.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from . import _definition
from ._engine import cron as cronlib
from ._engine import schedules as engine_schedules
from ._engine.engine import current
from ._engine.schedules import DECLARATIVE, IMPERATIVE
from ._serialization import loads
from .errors import PayloadValidationError, ScheduleNotFoundError

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20


def _dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        return datetime.fromisoformat(value)
    raise TypeError(f"expected an ISO 8601 date, got {type(value).__name__}")


@dataclass(frozen=True)
class ScheduledPayload:
    """What a scheduled task's run receives. ``timestamp`` is the nominal occurrence time
    (aware UTC), ``last_timestamp`` the previous occurrence that triggered a run (None for
    the first), ``upcoming`` the next 10 nominal times.

    Example::

        @ct.schedules.task(id="tick", cron="*/5 * * * *")
        def tick(payload: ScheduledPayload) -> str:
            return payload.timestamp.isoformat()
    """

    timestamp: datetime
    last_timestamp: datetime | None
    timezone: str
    schedule_id: str
    external_id: str | None
    upcoming: builtins.list[datetime] = field(default_factory=builtins.list)
    type: str = IMPERATIVE

    @classmethod
    def parse(cls, value: Any) -> ScheduledPayload:
        """Build from the stored JSON payload (or pass an instance through)."""
        if isinstance(value, ScheduledPayload):
            return value
        if not isinstance(value, Mapping):
            raise TypeError("a scheduled task's payload is a ScheduledPayload")
        last = value.get("last_timestamp")
        return cls(
            timestamp=_dt(value["timestamp"]),
            last_timestamp=None if last is None else _dt(last),
            timezone=str(value.get("timezone") or "UTC"),
            schedule_id=str(value.get("schedule_id") or ""),
            external_id=value.get("external_id"),
            upcoming=[_dt(u) for u in value.get("upcoming") or []],
            type=str(value.get("type") or IMPERATIVE),
        )


@dataclass(frozen=True)
class Schedule:
    """A stored schedule, as ``retrieve``/``list``/``create`` return it."""

    id: str
    type: str
    task: str
    active: bool
    cron: str
    description: str
    timezone: str
    external_id: str | None
    deduplication_key: str | None
    next_run: datetime | None
    environments: builtins.list[str]

    @classmethod
    def from_record(cls, record: Mapping[str, str]) -> Schedule:
        next_run = record.get("next_run")
        return cls(
            id=record["id"],
            type=record.get("type", IMPERATIVE),
            task=record.get("task", ""),
            active=record.get("active") == "1",
            cron=record.get("cron", ""),
            description=record.get("description", ""),
            timezone=record.get("timezone", "UTC"),
            external_id=record.get("external_id") or None,
            deduplication_key=record.get("dedup") or None,
            next_run=engine_schedules.to_dt(int(next_run)) if next_run else None,
            environments=builtins.list(loads(record.get("environments")) or []),
        )


@dataclass(frozen=True)
class Pagination:
    """Where a ``SchedulePage`` sits: its number, how many pages, how many schedules."""

    current_page: int
    total_pages: int
    count: int


@dataclass(frozen=True)
class SchedulePage:
    """One page of ``schedules.list``: ``data`` and ``pagination``; iterable."""

    data: builtins.list[Schedule]
    pagination: Pagination

    def __iter__(self) -> Iterator[Schedule]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


def _parse_payload(value: Any) -> ScheduledPayload:
    try:
        return ScheduledPayload.parse(value)
    except (KeyError, TypeError, ValueError) as exc:
        raise PayloadValidationError(f"not a scheduled task payload: {exc}", cause=exc) from exc


def task(
    *, id: str, cron: Any = None, run: Callable[..., Any] | None = None, **options: Any
) -> Any:
    """Define a scheduled task; ``cron`` is a pattern (UTC, every environment) or
    ``{"pattern", "timezone", "environments"}``. Without ``cron`` the task can still be
    scheduled with ``create``. Takes the options of ``ct.task``.

    Example::

        @ct.schedules.task(id="first-of-month", cron="0 0 1 * *")
        def first_of_month(payload: ct.schedules.ScheduledPayload) -> None: ...
    """
    if "schema" in options:
        raise TypeError("a scheduled task's payload is a ScheduledPayload: no schema")
    declared = engine_schedules.declare(cron)

    def build(fn: Callable[..., Any]) -> Any:
        defn = _definition.task(id=id, run=fn, schema=_parse_payload, **options)
        engine_schedules.mark_scheduled(id, declared)
        return defn

    return build(run) if run is not None else build


def _task_id(task: Any) -> str:
    task_id = getattr(task, "id", task)
    if not isinstance(task_id, str) or not task_id:
        raise TypeError("task must be a task id or a task object")
    return task_id


def _key(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _optional(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{name} must be a string")
    return value or None


def create(
    *,
    task: Any,
    cron: str,
    deduplication_key: str,
    external_id: str | None = None,
    timezone: str = "UTC",
) -> Schedule:
    """Create an imperative schedule, or update the one ``deduplication_key`` names.

    Example: ``ct.schedules.create(task="reminder", cron="0 8 * * *",
    deduplication_key="reminder-u1", external_id="u1", timezone="Europe/London")``.
    """
    engine = current()
    task_id = _task_id(task)
    key = _key(deduplication_key, "deduplication_key")
    engine_schedules.check_cron(cron, timezone)
    engine_schedules.check_task(engine, task_id)
    outcome, record = engine_schedules.put(
        engine,
        engine_schedules.imperative_id(key),
        mode="upsert",
        type_=IMPERATIVE,
        task=task_id,
        pattern=cron,
        tz_name=timezone,
        external_id=_optional(external_id, "external_id"),
        deduplication_key=key,
        environments=(engine.settings.environment,),
    )
    assert record is not None and outcome in ("created", "updated")
    return Schedule.from_record(record)


def _record(schedule_id: str) -> Mapping[str, str]:
    if not isinstance(schedule_id, str) or not schedule_id:
        raise TypeError("schedule id must be a non-empty string")
    record = engine_schedules.get(current(), schedule_id)
    if record is None:
        raise ScheduleNotFoundError(f"no schedule with id {schedule_id!r}")
    return record


def _imperative(schedule_id: str, action: str) -> Mapping[str, str]:
    record = _record(schedule_id)
    if record.get("type") == DECLARATIVE:
        raise ValueError(
            f"Cannot {action} a declarative schedule: change its cron in code "
            "and let the workers sync it"
        )
    return record


def _outcome(schedule_id: str, outcome: str, action: str) -> None:
    if outcome == "missing":
        raise ScheduleNotFoundError(f"no schedule with id {schedule_id!r}")
    if outcome == "type":
        raise ValueError(f"Cannot {action} a declarative schedule")


def retrieve(id: str) -> Schedule:
    """Return a schedule. Example: ``ct.schedules.retrieve("sched_1234").next_run``."""
    return Schedule.from_record(_record(id))


def list(*, page: int = 1, per_page: int = DEFAULT_PER_PAGE) -> SchedulePage:
    """One page of schedules in creation order (at most 100 per page).

    Example: ``for s in ct.schedules.list(page=2, per_page=50): print(s.id, s.cron)``.
    """
    for name, value in (("page", page), ("per_page", per_page)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an integer")
    if page < 1 or not 1 <= per_page <= MAX_PER_PAGE:
        raise ValueError(f"page must be >= 1 and per_page between 1 and {MAX_PER_PAGE}")
    records, total = engine_schedules.page(current(), (page - 1) * per_page, per_page)
    return SchedulePage(
        data=[Schedule.from_record(r) for r in records],
        pagination=Pagination(
            current_page=page, total_pages=math.ceil(total / per_page), count=total
        ),
    )


_KEEP: Any = object()


def update(
    id: str,
    *,
    task: Any = None,
    cron: str | None = None,
    timezone: str | None = None,
    external_id: Any = _KEEP,
    deduplication_key: str | None = None,
) -> Schedule:
    """Change what is given of an imperative schedule and keep the rest (issue 15).

    ``task`` is optional and validated when given (a schedule's task never changes);
    ``external_id=None`` clears it; ``deduplication_key`` may only repeat the current one.

    Example: ``ct.schedules.update(s.id, cron="0 9 * * *")``.
    """
    engine = current()
    record = _imperative(id, "update")
    if task is not None:
        engine_schedules.check_task(engine, _task_id(task))
    if deduplication_key is not None and deduplication_key != record.get("dedup"):
        raise ValueError("a schedule's deduplication_key cannot change (create another one)")
    pattern = cron if cron is not None else record.get("cron", "")
    tz_name = timezone if timezone is not None else record.get("timezone", "UTC")
    engine_schedules.check_cron(pattern, tz_name)
    kept = record.get("external_id") or None
    outcome, stored = engine_schedules.put(
        engine,
        id,
        mode="update",
        type_=IMPERATIVE,
        task=record.get("task", ""),
        pattern=pattern,
        tz_name=tz_name,
        external_id=kept if external_id is _KEEP else _optional(external_id, "external_id"),
        deduplication_key=None,
        environments=(engine.settings.environment,),
    )
    _outcome(id, outcome, "update")
    assert stored is not None
    return Schedule.from_record(stored)


def _set_active(schedule_id: str, active: bool) -> Schedule:
    action = "activate" if active else "deactivate"
    _imperative(schedule_id, action)
    outcome, record = engine_schedules.set_active(current(), schedule_id, active)
    _outcome(schedule_id, outcome, action)
    assert record is not None
    return Schedule.from_record(record)


def activate(id: str) -> Schedule:
    """Resume triggering at the next occurrence (no backfill). Example:
    ``ct.schedules.activate(s.id)``."""
    return _set_active(id, True)


def deactivate(id: str) -> Schedule:
    """Stop triggering; occurrences keep advancing. Example: ``ct.schedules.deactivate(s.id)``."""
    return _set_active(id, False)


def del_(id: str) -> dict[str, str]:
    """Delete an imperative schedule. Example: ``ct.schedules.del_(s.id) == {"id": s.id}``."""
    _imperative(id, "delete")
    _outcome(id, engine_schedules.delete(current(), id), "delete")
    return {"id": id}


def timezones(*, exclude_utc: bool = False) -> dict[str, builtins.list[str]]:
    """The IANA zone names a schedule accepts.

    Example: ``"Asia/Tokyo" in ct.schedules.timezones()["timezones"]``.
    """
    names = sorted(cronlib.timezone_names())
    if exclude_utc:
        names = [n for n in names if n != "UTC"]
    return {"timezones": names}


__all__ = [
    "Pagination",
    "Schedule",
    "ScheduleNotFoundError",
    "SchedulePage",
    "ScheduledPayload",
    "activate",
    "create",
    "deactivate",
    "del_",
    "list",
    "retrieve",
    "task",
    "timezones",
    "update",
]
