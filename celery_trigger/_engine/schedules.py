"""Schedules: the declarative registry, validation, reads and writes (for the public API),
worker-start sync, and firing.

No beat process: each schedule has exactly one ``sched|<id>`` member in the timer set, due
at its next occurrence, and whichever worker's timer service claims it fires it (DESIGN §8).

Invariants:
- an occurrence is identified by (schedule instance, nominal time): its run id and
  idempotency key derive from that pair, so a fire repeated after a crash, or by a second
  worker whose claim lease lapsed, finds the run it created and creates no other (D-12);
- after a fire, ``advance_schedule`` moves ``next_run`` from the fired occurrence to the
  first occurrence after *now* (compare-and-set): missed occurrences are skipped, never
  backfilled, and a fire that lost a race with an update writes nothing;
- an inactive schedule keeps advancing but triggers nothing, and ``last_run`` (the
  payload's ``last_timestamp``) only ever holds occurrences that did trigger a run;
- a fire never happens before the nominal time (a member claimed early is re-armed), D-12;
- schedule time comes from ``clock()``, the wall clock unless a test installs a faster or
  shifted ``Clock`` with ``set_clock``; nominal times are schedule time, timer scores are
  wall time (``Clock.to_wall``).
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .._config import ENVIRONMENTS
from .._serialization import dumps, loads
from .._store.base import Record, schedule_timer
from ..errors import TaskNotFoundError
from . import cron as cronlib
from . import registry, tracing
from .dispatch import create_and_publish
from .engine import Engine
from .prepare import prepare

DECLARATIVE = "DECLARATIVE"
IMPERATIVE = "IMPERATIVE"
#: D-8: how many following nominal times a payload lists.
UPCOMING = 10
#: A fire claimed more than this before its due time is re-armed instead (ms).
EARLY_TOLERANCE_MS = 20
#: Idempotency keys of occurrences only have to outlive a fire's retries (seconds).
OCCURRENCE_KEY_TTL_S = 86400


@dataclass(frozen=True)
class Clock:
    """Schedule time as a linear function of wall time (ms); the identity by default.

    ``schedule = origin + offset + (wall - origin) * speed``. Tests run schedules faster
    (``speed=60``: a minute per second) or shifted; every process firing a schedule must
    use the same clock.
    """

    origin_ms: int = 0
    offset_ms: int = 0
    speed: float = 1.0

    def now_ms(self) -> int:
        return self.to_schedule(int(time.time() * 1000))

    def to_schedule(self, wall_ms: int) -> int:
        return int(self.origin_ms + self.offset_ms + (wall_ms - self.origin_ms) * self.speed)

    def to_wall(self, nominal_ms: int) -> int:
        return math.ceil(
            self.origin_ms + (nominal_ms - self.origin_ms - self.offset_ms) / self.speed
        )


_clock = Clock()


def clock() -> Clock:
    return _clock


def set_clock(new: Clock | None) -> None:
    """Install a schedule clock (tests and demos); ``None`` restores the wall clock."""
    global _clock
    _clock = new or Clock()


# the declarative registry ------------------------------------------------------------------
@dataclass(frozen=True)
class Declared:
    """A ``schedules.task(cron=...)`` schedule as written in code."""

    pattern: str
    timezone: str = "UTC"
    environments: tuple[str, ...] = ENVIRONMENTS


_lock = threading.Lock()
_scheduled: dict[str, Declared | None] = {}


def declare(cron: Any) -> Declared | None:
    """Validate a ``cron=`` argument: a pattern, or ``{"pattern", "timezone",
    "environments"}``. Raises ``ValueError``/``TypeError`` at definition time."""
    if cron is None:
        return None
    if isinstance(cron, str):
        check_cron(cron, "UTC")
        return Declared(cron)
    if not isinstance(cron, Mapping):
        raise TypeError(
            "cron must be a pattern string or a dict with 'pattern', 'timezone' and 'environments'"
        )
    unknown = set(cron) - {"pattern", "timezone", "environments"}
    if unknown:
        raise ValueError(f"unknown cron key(s): {', '.join(sorted(unknown))}")
    pattern, tz = cron.get("pattern"), cron.get("timezone") or "UTC"
    if not isinstance(pattern, str):
        raise ValueError("cron needs a 'pattern' string")
    check_cron(pattern, tz)
    envs = cron.get("environments")
    if envs is None:
        return Declared(pattern, tz)
    if isinstance(envs, str) or not all(e in ENVIRONMENTS for e in envs) or not envs:
        raise ValueError(f"cron environments must be a non-empty list of {ENVIRONMENTS}")
    return Declared(pattern, tz, tuple(dict.fromkeys(envs)))


def mark_scheduled(task_id: str, declared: Declared | None) -> None:
    """Record that ``task_id`` was defined with ``schedules.task`` (and its cron, if any)."""
    with _lock:
        _scheduled[task_id] = declared


def forget(task_id: str) -> None:
    """Drop a task from the scheduled registry (tests that define tasks on the fly)."""
    with _lock:
        _scheduled.pop(task_id, None)


def is_scheduled(task_id: str) -> bool:
    return task_id in _scheduled


def declared_schedules() -> dict[str, Declared]:
    with _lock:
        return {task_id: d for task_id, d in _scheduled.items() if d is not None}


# validation ----------------------------------------------------------------------------
def check_cron(pattern: Any, tz_name: Any) -> tuple[cronlib.CronExpression, Any]:
    """Parse the pattern, resolve the zone and make sure the pattern ever fires."""
    if tz_name is None or not isinstance(tz_name, str):
        raise TypeError("timezone must be an IANA zone name string")
    parsed = cronlib.parse(pattern)
    tz = cronlib.zone(tz_name)
    cronlib.next_after(parsed, datetime.now(timezone.utc), tz)  # raises if it never matches
    return parsed, tz


def check_task(engine: Engine, task_id: str) -> None:
    """The task must exist (here or in a worker's stored definitions) and be a
    ``schedules.task``; raises ``TaskNotFoundError`` or ``ValueError``."""
    not_scheduled = ValueError(
        f"Task {task_id!r} is not a scheduled task: only tasks "
        "defined with schedules.task can be scheduled"
    )
    if registry.get(task_id) is not None:
        if not is_scheduled(task_id):
            raise not_scheduled
        return
    stored = engine.store.get_task_def(task_id)
    if stored is None:
        raise TaskNotFoundError(
            f"no task with id {task_id!r} is defined (in this process or "
            "by any worker that has started)"
        )
    if not (loads(stored) or {}).get("scheduled"):
        raise not_scheduled


# ids -----------------------------------------------------------------------------------
def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def imperative_id(deduplication_key: str) -> str:
    """The id a deduplication key names: upserts by key address one schedule hash."""
    return f"sched_{_digest('dedup|' + deduplication_key)}"


def declarative_id(task_id: str) -> str:
    return f"sched_{_digest('declarative|' + task_id)}"


def occurrence_run_id(instance: str, nominal_ms: int) -> str:
    return f"run_{_digest(f'{instance}|{nominal_ms}')}"


def to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# writes --------------------------------------------------------------------------------
def put(
    engine: Engine,
    schedule_id: str,
    *,
    mode: str,
    type_: str,
    task: str,
    pattern: str,
    tz_name: str,
    external_id: str | None,
    deduplication_key: str | None,
    environments: tuple[str, ...],
) -> tuple[str, Record | None]:
    """Validate and write one schedule (see ``Store.put_schedule``); nothing is written
    when the pattern or zone is bad."""
    parsed, tz = check_cron(pattern, tz_name)
    clk = clock()
    nominal = to_ms(cronlib.next_after(parsed, to_dt(clk.now_ms()), tz))
    create_fields = {
        "id": schedule_id,
        "type": type_,
        "task": task,
        "active": "1",
        "instance": uuid.uuid4().hex,
    }
    if deduplication_key is not None:
        create_fields["dedup"] = deduplication_key
    fields = {
        "cron": parsed.expression,
        "timezone": tz_name,
        "description": cronlib.describe(parsed),
        "external_id": external_id or "",
        "environments": dumps(list(environments)),
    }
    return engine.store.put_schedule(
        schedule_id,
        int(time.time() * 1000),
        mode=mode,
        require_type=type_,
        create_fields=create_fields,
        fields=fields,
        next_run=(nominal, clk.to_wall(nominal)),
    )


def set_active(engine: Engine, schedule_id: str, active: bool) -> tuple[str, Record | None]:
    """Flag an imperative schedule active or not; ``(outcome, record)`` as ``put``."""
    return engine.store.put_schedule(
        schedule_id,
        int(time.time() * 1000),
        mode="update",
        require_type=IMPERATIVE,
        create_fields={},
        fields={"active": "1" if active else "0"},
        next_run=None,
    )


def delete(engine: Engine, schedule_id: str) -> str:
    """Delete an imperative schedule; the outcome of ``Store.delete_schedule``."""
    return engine.store.delete_schedule(schedule_id, require_type=IMPERATIVE)


# reads ---------------------------------------------------------------------------------
def get(engine: Engine, schedule_id: str) -> Record | None:
    """The stored schedule, or None."""
    return engine.store.get_schedule(schedule_id)


def page(engine: Engine, offset: int, count: int) -> tuple[list[Record], int]:
    """``count`` schedules from ``offset`` in creation order, and how many there are."""
    return engine.store.list_schedules(offset, count)


def all_schedules(engine: Engine, page_size: int = 500) -> list[Record]:
    out: list[Record] = []
    while True:
        records, total = engine.store.list_schedules(len(out), page_size)
        out.extend(records)
        if not records or len(out) >= total:
            return out


def sync_declarative(engine: Engine, *, prune: bool = False) -> dict[str, list[str]]:
    """Write this process's declarative schedules for ``trigger_environment``; delete the
    declarative schedules of tasks defined here without a cron for this environment (with
    ``prune``, also those of tasks this process does not define at all)."""
    env = engine.settings.environment
    local = {d.id for d in registry.all_definitions()}
    wanted = {
        task_id: d
        for task_id, d in declared_schedules().items()
        if task_id in local and env in d.environments
    }
    report: dict[str, list[str]] = {"created": [], "updated": [], "deleted": []}
    for task_id, d in wanted.items():
        sid = declarative_id(task_id)
        outcome, _ = put(
            engine,
            sid,
            mode="upsert",
            type_=DECLARATIVE,
            task=task_id,
            pattern=d.pattern,
            tz_name=d.timezone,
            external_id=None,
            deduplication_key=None,
            environments=d.environments,
        )
        report.setdefault(outcome, []).append(sid)
    keep = {declarative_id(task_id) for task_id in wanted}
    for record in all_schedules(engine):
        if record.get("type") != DECLARATIVE or record.get("id") in keep:
            continue
        if prune or record.get("task") in local:
            if engine.store.delete_schedule(record["id"], require_type=DECLARATIVE) == "ok":
                report["deleted"].append(record["id"])
    return report


# firing --------------------------------------------------------------------------------
def payload_for(
    record: Record, nominal_ms: int, parsed: cronlib.CronExpression, tz: Any
) -> dict[str, Any]:
    """The JSON payload of an occurrence (``ScheduledPayload`` once parsed)."""
    stamp = to_dt(nominal_ms)
    last = record.get("last_run")
    return {
        "timestamp": stamp.isoformat(),
        "last_timestamp": to_dt(int(last)).isoformat() if last else None,
        "timezone": record.get("timezone", "UTC"),
        "schedule_id": record.get("id", ""),
        "external_id": record.get("external_id") or None,
        "upcoming": [u.isoformat() for u in cronlib.occurrences(parsed, stamp, tz, UPCOMING)],
        "type": record.get("type", IMPERATIVE),
    }


def _trigger_occurrence(
    engine: Engine, record: Record, nominal_ms: int, parsed: cronlib.CronExpression, tz: Any
) -> str:
    instance = record.get("instance") or record.get("id", "")
    options = {
        "idempotency_key": ["schedule", record.get("id", ""), instance, str(nominal_ms)],
        "idempotency_key_ttl": OCCURRENCE_KEY_TTL_S,
    }
    prepared = prepare(
        engine,
        record["task"],
        payload_for(record, nominal_ms, parsed, tz),
        options,
        run_id=occurrence_run_id(instance, nominal_ms),
        parse=False,
    )
    prepared.new.fields["created"] = str(nominal_ms)  # a scheduled run is created "at" its time
    prepared.new.fields["schedule"] = record.get("id", "")
    run_id, _ = create_and_publish(engine, [prepared])[0]
    return run_id


def fire(engine: Engine, schedule_id: str) -> None:
    """Handle a due ``sched|<id>`` timer: trigger the occurrence (if active), arm the next."""
    store = engine.store
    record = store.get_schedule(schedule_id)
    if record is None or not record.get("next_run"):
        return  # deleted: its timer dies with it
    nominal = int(record["next_run"])
    clk = clock()
    wall_now = int(time.time() * 1000)
    due = clk.to_wall(nominal)
    if due > wall_now + EARLY_TOLERANCE_MS:
        store.add_timers([(schedule_timer(schedule_id), due)])  # claimed early: re-arm
        return
    parsed, tz = cronlib.parse(record["cron"]), cronlib.zone(record["timezone"])
    active = record.get("active") == "1"
    if active:
        # each occurrence starts a new trace, named after its schedule
        attributes = {"ct.schedule_id": schedule_id, "ct.task_id": record.get("task")}
        with tracing.root_span(f"schedule {schedule_id}", attributes):
            _trigger_occurrence(engine, record, nominal, parsed, tz)
    following = to_ms(cronlib.next_after(parsed, to_dt(max(nominal, clk.now_ms())), tz))
    store.advance_schedule(
        schedule_id,
        expected_ms=nominal,
        next_ms=following,
        due_ms=clk.to_wall(following),
        last_ms=nominal if active else None,
        now_ms=wall_now,
    )
