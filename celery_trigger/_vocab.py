"""The engine's vocabulary, defined once: run statuses and their groups, timer kinds, change
event kinds. No other Python or Lua file spells these strings.

- Python code uses the names here (``RunStatus.QUEUED``, ``TimerKind.PUBLISH.member(run_id)``,
  ``EventKind.STATUS``).
- Lua scripts get the same values injected when they load: ``lua_prelude()`` is prepended to
  every script, so a script writes ``S.QUEUED``, ``FINAL[status]``, ``T.lease .. id`` and
  ``E.status`` and never a literal.
- ``MemoryStore`` (the embedded mode) uses the Python names.

A final status never changes again (SEMANTICS §4, D-6). A timer member is
``<kind>|<target>``: the target is a run id, except for ``sched`` (a schedule id), ``pump``
(a sub-queue id), ``notify`` (a run id or ``token:<id>``) and ``reap`` (a fixed name).
"""

from __future__ import annotations

from enum import Enum


class RunStatus(str, Enum):
    """Public run status; values are the Trigger.dev strings."""

    PENDING_VERSION = "PENDING_VERSION"
    DELAYED = "DELAYED"
    QUEUED = "QUEUED"
    DEQUEUED = "DEQUEUED"
    EXECUTING = "EXECUTING"
    WAITING = "WAITING"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    SYSTEM_FAILURE = "SYSTEM_FAILURE"
    EXPIRED = "EXPIRED"
    TIMED_OUT = "TIMED_OUT"

    def __str__(self) -> str:
        return self.value

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


#: Statuses a run never leaves.
FINAL_STATUSES = frozenset(
    {
        RunStatus.COMPLETED,
        RunStatus.CANCELED,
        RunStatus.FAILED,
        RunStatus.CRASHED,
        RunStatus.SYSTEM_FAILURE,
        RunStatus.EXPIRED,
        RunStatus.TIMED_OUT,
    }
)
#: Final statuses other than success.
FAILED_STATUSES = FINAL_STATUSES - {RunStatus.COMPLETED}
#: Not started yet (the TTL applies; cancel needs no worker).
QUEUED_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.DELAYED, RunStatus.PENDING_VERSION})
#: Held by a worker under a lease.
EXECUTING_STATUSES = frozenset({RunStatus.EXECUTING, RunStatus.DEQUEUED})
#: The string values of ``FINAL_STATUSES`` (store code compares raw strings).
FINAL_VALUES = frozenset(s.value for s in FINAL_STATUSES)


class WaitpointStatus(str, Enum):
    """Status of a waitpoint token."""

    WAITING = "WAITING"
    COMPLETED = "COMPLETED"
    TIMED_OUT = "TIMED_OUT"

    def __str__(self) -> str:
        return self.value


class TimerKind(str, Enum):
    """What a timer member does when it is due (``_engine/timers.py`` dispatches on it)."""

    ENQUEUE = "enqueue"  # a delayed run is due: DELAYED -> QUEUED, publish
    TTL = "ttl"  # a queued run's TTL passed: QUEUED (never started) -> EXPIRED
    RETRY = "retry"  # a long retry delay passed: publish the next attempt
    PUBLISH = "pub"  # publish watchdog: a run still QUEUED is published again
    RESUME = "resume"  # a parked run is due (duration wait, or fallback after a notify)
    NOTIFY = "notify"  # a run or token resolved; its waiters may not have been told yet
    TOKEN_TIMEOUT = "tokento"  # a waitpoint token's timeout passed
    LEASE = "lease"  # an executing run's lease may have lapsed
    SCHEDULE = "sched"  # a schedule occurrence is due (target: schedule id)
    PROMOTE = "promote"  # a run was handed a concurrency slot: publish it
    PUMP = "pump"  # a slot of a sub-queue lapsed: admit its next waiting runs
    REAP = "reap"  # drop slots whose lease lapsed
    RETIRE = "retire"  # a final run's retention passed: delete its keys and index entries

    def __str__(self) -> str:
        return self.value

    def member(self, target: str) -> str:
        """The timer member for ``target``: ``TimerKind.TTL.member("run_a") == "ttl|run_a"``."""
        return f"{self.value}{TIMER_SEPARATOR}{target}"


TIMER_SEPARATOR = "|"
#: The target of the one ``reap`` timer.
REAP_SLOTS_TARGET = "slots"
#: The prefix of a token's id in a waiter member (``notify`` targets, waiter sets).
TOKEN_MEMBER_PREFIX = "token:"


def parse_timer(member: str) -> tuple[TimerKind | None, str]:
    """``(kind, target)`` of a timer member; kind None for an unknown kind."""
    kind, _, target = member.partition(TIMER_SEPARATOR)
    try:
        return TimerKind(kind), target
    except ValueError:
        return None, target


class EventKind(str, Enum):
    """Kinds of a run's change events (realtime, ``lua/events.lua``)."""

    CREATED = "c"
    STATUS = "s"
    METADATA = "m"
    TAGS = "t"
    STREAM = "n"

    def __str__(self) -> str:
        return self.value


def _lua_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lua_prelude() -> str:
    """Lua definitions of this vocabulary, prepended to every script when it loads.

    ``S.<STATUS>`` status strings, ``FINAL[status]`` true for final statuses,
    ``W.<STATUS>`` token statuses, ``T.<kind value>`` timer member prefixes (``T.lease ..
    run_id``), ``E.<name>`` event kinds (lower-case member names: ``E.status``).
    """
    statuses = ", ".join(f"{s.name}={_lua_str(s.value)}" for s in RunStatus)
    final = ", ".join(f"[{_lua_str(s.value)}]=true" for s in sorted(FINAL_STATUSES))
    tokens = ", ".join(f"{s.name}={_lua_str(s.value)}" for s in WaitpointStatus)
    timers = ", ".join(f"{k.value}={_lua_str(k.value + TIMER_SEPARATOR)}" for k in TimerKind)
    events = ", ".join(f"{e.name.lower()}={_lua_str(e.value)}" for e in EventKind)
    return (
        "-- vocabulary (celery_trigger/_vocab.py), injected at load\n"
        f"local S = {{{statuses}}}\n"
        f"local FINAL = {{{final}}}\n"
        f"local W = {{{tokens}}}\n"
        f"local T = {{{timers}}}\n"
        f"local E = {{{events}}}\n"
    )
