"""Option types and their validation: durations, delays, retry policy, queues, machines, tags.

Every user-supplied option passes through one function here, once, at the call site, so a
bad value raises ``ValueError``/``TypeError`` before anything is written or published
(decision D-13). Durations are normalised to seconds (``to_seconds``); instants are aware
UTC datetimes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Union

Duration = Union[str, int, float, timedelta]

#: Trigger.dev's maximum attempt number that may still be retried (MAX_TASK_RUN_ATTEMPTS).
MAX_ATTEMPTS_CAP = 250
#: maxDuration bounds in seconds (SEMANTICS §1.6).
MIN_MAX_DURATION_S = 5
MAX_MAX_DURATION_S = 2_147_483_647
#: Tag rules (D-14).
MAX_TAGS = 10
MAX_TAG_LENGTH = 64
#: priority is stored as ms clamped to int32 (SEMANTICS §3.2).
_INT32 = 2_147_483_647
#: The longest duration any option may give (100 years): beyond it instants overflow
#: ``datetime`` and millisecond TTLs overflow Redis.
MAX_DURATION_S = 100 * 365 * 86400

_DURATION_RE = re.compile(r"^(?:\d+(?:w|d|hr|h|m|s))+$")
_DURATION_PART = re.compile(r"(\d+)(w|d|hr|h|m|s)")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "hr": 3600, "m": 60, "s": 1}
_IDEM_TTL_RE = re.compile(r"^(\d+)([smhd])$")


def parse_duration_string(text: str) -> float:
    """Parse the Trigger.dev duration grammar (``"90s"``, ``"1h52m18s"``, ``"2w"``) to seconds.

    Raises ``ValueError`` for anything else (``"1.5h"``, ``"1 h"``, ``""``, > 100 chars).
    """
    if not isinstance(text, str) or not text or len(text) > 100 or not _DURATION_RE.match(text):
        raise ValueError(f"invalid duration {text!r}: use forms like '90s', '2h30m', '1d', '2w'")
    seen: dict[str, int] = {}
    for amount, unit in _DURATION_PART.findall(text):
        key = "h" if unit == "hr" else unit
        seen.setdefault(key, int(amount))  # each unit counts once: the first occurrence
    return float(sum(_UNIT_SECONDS[u] * n for u, n in seen.items()))


def to_seconds(value: Duration, *, name: str = "duration") -> float:
    """Normalise a duration (string, number of seconds or timedelta) to seconds.

    Example: ``to_seconds("2h30m") == 9000.0``.
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a duration string, a number of seconds or a timedelta")
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = parse_duration_string(value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    else:
        raise TypeError(
            f"{name} must be a duration string, a number of seconds or a timedelta, "
            f"not {type(value).__name__}"
        )
    if math.isnan(seconds) or math.isinf(seconds) or seconds < 0:
        raise ValueError(f"{name} must be a finite, non-negative duration, got {value!r}")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{name} must be at most 100 years ({MAX_DURATION_S} s), got {value!r}")
    return seconds


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def resolve_delay(value: Duration | datetime | None, now: datetime) -> datetime | None:
    """Return the aware UTC instant a ``delay`` option points to, or ``None`` for no delay.

    A past or present instant means "no delay" (TRIG-9).
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("delay datetime must be timezone-aware (e.g. datetime.now(UTC))")
        due = value.astimezone(timezone.utc)
    else:
        due = now + timedelta(seconds=to_seconds(value, name="delay"))
    return due if due > now else None


def resolve_ttl(value: Duration | None, *, name: str = "ttl") -> float | None:
    """Return a TTL in seconds; ``0`` (or a zero duration) means "no TTL" and gives ``None``.

    A numeric TTL must be a whole number of seconds (TRIG-12).
    """
    if value is None:
        return None
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{name} must be a whole number of seconds, got {value!r}")
    seconds = to_seconds(value, name=name)
    return seconds if seconds > 0 else None


def format_duration(seconds: float) -> str:
    """Render seconds in the duration grammar (``4500`` → ``"1h15m"``) for messages."""
    total = round(seconds)
    if total <= 0:
        return "0s"
    parts = []
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if total >= size:
            parts.append(f"{total // size}{unit}")
            total %= size
    return "".join(parts)


def resolve_idempotency_ttl(value: str | int | float | timedelta | None) -> float | None:
    """Idempotency TTL in seconds: ``<int><s|m|h|d>``, a number or a timedelta.

    The upstream grammar silently ignores other strings (G-4); we reject them (D-13).
    """
    if value is None:
        return None
    if isinstance(value, str):
        match = _IDEM_TTL_RE.match(value)
        if not match:
            raise ValueError(
                f"idempotency_key_ttl {value!r} must be one number and one unit of s, m, h, d "
                "(e.g. '10m', '1d')"
            )
        seconds = float(int(match.group(1)) * _UNIT_SECONDS[match.group(2)])
        if seconds > MAX_DURATION_S:
            raise ValueError(f"idempotency_key_ttl {value!r} is longer than 100 years")
        return seconds
    seconds = to_seconds(value, name="idempotency_key_ttl")
    if seconds <= 0:
        raise ValueError("idempotency_key_ttl must be positive")
    return seconds


def clamp_max_duration(value: Duration | None, *, name: str = "max_duration") -> int | None:
    """maxDuration in whole seconds clamped to [5, 2147483647] (TRIG-19, TASK-27)."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = min(value, timedelta(seconds=MAX_MAX_DURATION_S))
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        value = min(value, MAX_MAX_DURATION_S)  # clamped, as upstream (TRIG-19)
    seconds = to_seconds(value, name=name)
    return int(min(MAX_MAX_DURATION_S, max(MIN_MAX_DURATION_S, math.ceil(seconds))))


def priority_ms(value: int | float | None) -> int:
    """Priority in seconds → the stored ms offset, clamped to int32 (SEMANTICS §3.2)."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"priority must be a number of seconds, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"priority must be a finite number of seconds, got {value!r}")
    seconds = max(-_INT32 / 1000, min(_INT32 / 1000, value))  # clamp before scaling
    return int(max(-_INT32, min(_INT32, round(seconds * 1000))))


def normalize_tags(value: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Validate trigger-time tags: ≤ 10, each 1-64 characters, blanks dropped, de-duplicated."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise TypeError(f"tags must be a string or a list of strings, not {type(value).__name__}")
    out: list[str] = []
    for tag in items:
        if not isinstance(tag, str):
            raise TypeError(f"tags must be strings, got {tag!r}")
        if not tag.strip():
            continue
        if len(tag) > MAX_TAG_LENGTH:
            raise ValueError(
                f"tag {tag[:20]!r}... is {len(tag)} characters; the limit is {MAX_TAG_LENGTH}"
            )
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise ValueError(f"Runs can only have {MAX_TAGS} tags, you're trying to set {len(out)}.")
    return out


@dataclass(frozen=True)
class RetryOptions:
    """A task's retry policy (SEMANTICS §1.2); unset fields inherit these defaults.

    Example: ``RetryOptions(max_attempts=10, factor=1.8, min_timeout_in_ms=500)``.
    """

    max_attempts: int = 3
    factor: float = 2
    min_timeout_in_ms: int = 1000
    max_timeout_in_ms: int = 60000
    randomize: bool = True

    def __post_init__(self) -> None:
        problems = []
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            problems.append(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}")
        if (
            isinstance(self.factor, bool)
            or not isinstance(self.factor, (int, float))
            or not self.factor > 0
        ):
            problems.append(f"factor must be a positive number, got {self.factor!r}")
        for name in ("min_timeout_in_ms", "max_timeout_in_ms"):
            val = getattr(self, name)
            if isinstance(val, bool) or not isinstance(val, (int, float)) or val < 0:
                problems.append(f"{name} must be a non-negative number, got {val!r}")
        if not isinstance(self.randomize, bool):
            problems.append(f"randomize must be a bool, got {self.randomize!r}")
        if problems:
            raise ValueError("invalid retry options: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "factor": self.factor,
            "min_timeout_in_ms": self.min_timeout_in_ms,
            "max_timeout_in_ms": self.max_timeout_in_ms,
            "randomize": self.randomize,
        }


_RETRY_FIELDS = frozenset(RetryOptions.__dataclass_fields__)


def coerce_retry(
    value: RetryOptions | Mapping[str, Any] | None, base: RetryOptions | None = None
) -> RetryOptions | None:
    """Accept a RetryOptions or an equivalent dict; dict fields overlay ``base`` (or defaults)."""
    if value is None or isinstance(value, RetryOptions):
        return value
    if not isinstance(value, Mapping):
        raise TypeError(f"retry must be RetryOptions or a dict, not {type(value).__name__}")
    unknown = set(value) - _RETRY_FIELDS - {"out_of_memory"}
    if unknown:
        raise ValueError(f"unknown retry option(s): {', '.join(sorted(unknown))}")
    fields = (base or RetryOptions()).to_dict()
    fields.update({k: v for k, v in value.items() if k in _RETRY_FIELDS})
    return RetryOptions(**fields)


#: Queue names keep only these characters and at most 128 of them (SEMANTICS §6.1, QUEUE-10).
_QUEUE_NAME_DROP = re.compile(r"[^A-Za-z0-9_\-/]")
MAX_QUEUE_NAME = 128


def sanitize_queue_name(name: str) -> str:
    """``"my queue!"`` → ``"myqueue"``: drop other characters, keep the first 128."""
    return _QUEUE_NAME_DROP.sub("", name)[:MAX_QUEUE_NAME]


@dataclass(frozen=True)
class Queue:
    """A named concurrency queue. Create with ``ct.queue(name=..., concurrency_limit=...)``.

    ``celery_queue`` names the Celery (broker) queue its runs' messages travel on; without it
    they follow the task's Celery routing (``task_routes``, else the default queue)."""

    name: str
    concurrency_limit: int | None = None
    celery_queue: str | None = None

    def __post_init__(self) -> None:
        clean = sanitize_queue_name(self.name) if isinstance(self.name, str) else ""
        if not clean:
            raise ValueError(
                f"queue name {self.name!r} must contain letters, digits, '_', '-' or '/' "
                "(other characters are dropped)"
            )
        object.__setattr__(self, "name", clean)
        limit = self.concurrency_limit
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 0
        ):
            raise ValueError(f"concurrency_limit must be a non-negative integer, got {limit!r}")
        if self.celery_queue is not None and (
            not isinstance(self.celery_queue, str) or not self.celery_queue.strip()
        ):
            raise ValueError(f"celery_queue must be a Celery queue name, got {self.celery_queue!r}")


def queue(
    *, name: str, concurrency_limit: int | None = None, celery_queue: str | None = None
) -> Queue:
    """Define a queue. Example: ``ct.queue(name="emails", concurrency_limit=5)``; with
    ``celery_queue="emails"`` its runs' messages go to that Celery queue."""
    return Queue(name=name, concurrency_limit=concurrency_limit, celery_queue=celery_queue)


def coerce_queue(
    value: Queue | str | Mapping[str, Any] | None, default_name: str | None = None
) -> Queue | None:
    """A ``Queue`` from a queue, a name or a dict; a dict without a name (a task's
    ``queue={"concurrency_limit": n}``) names ``default_name``, the task's own queue."""
    if value is None or isinstance(value, Queue):
        return value
    if isinstance(value, str):
        return Queue(name=value)
    if isinstance(value, Mapping):
        unknown = set(value) - {"name", "concurrency_limit", "celery_queue"}
        if unknown:
            raise ValueError(f"unknown queue option(s): {', '.join(sorted(unknown))}")
        name = value.get("name", default_name)
        return Queue(
            name=name,
            concurrency_limit=value.get("concurrency_limit"),
            celery_queue=value.get("celery_queue"),
        )
    raise TypeError(f"queue must be a name, a Queue or a dict, not {type(value).__name__}")


@dataclass(frozen=True)
class MachinePreset:
    name: str
    cpu: float
    memory: float


MACHINE_PRESETS: dict[str, MachinePreset] = {
    p.name: p
    for p in (
        MachinePreset("micro", 0.25, 0.25),
        MachinePreset("small-1x", 0.5, 0.5),
        MachinePreset("small-2x", 1, 1),
        MachinePreset("medium-1x", 1, 2),
        MachinePreset("medium-2x", 2, 4),
        MachinePreset("large-1x", 4, 8),
        MachinePreset("large-2x", 8, 16),
    )
}
DEFAULT_MACHINE = "small-1x"


def resolve_machine(value: str | Mapping[str, Any] | None) -> str | None:
    """A preset name, ``{"preset": name}`` or deprecated ``{"cpu", "memory"}`` → preset name."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        if "preset" in value:
            value = value["preset"]
        elif "cpu" in value and "memory" in value:
            cpu, mem = value["cpu"], value["memory"]
            for preset in MACHINE_PRESETS.values():
                if preset.cpu >= cpu and preset.memory >= mem:
                    return preset.name
            return DEFAULT_MACHINE
        else:
            raise ValueError("machine dict needs 'preset' or both 'cpu' and 'memory'")
    if not isinstance(value, str) or value not in MACHINE_PRESETS:
        raise ValueError(
            f"unknown machine preset {value!r}; choose one of {', '.join(MACHINE_PRESETS)}"
        )
    return value


@dataclass(frozen=True)
class BatchItem:
    """One item of a batch trigger: ``BatchItem(payload, tags=["x"], delay="1m")``."""

    payload: Any
    options: dict[str, Any] = field(default_factory=dict)

    def __init__(self, payload: Any, **options: Any) -> None:
        object.__setattr__(self, "payload", payload)
        object.__setattr__(self, "options", dict(options))


__all__ = [
    "BatchItem",
    "Duration",
    "MACHINE_PRESETS",
    "MachinePreset",
    "Queue",
    "RetryOptions",
    "clamp_max_duration",
    "format_duration",
    "normalize_tags",
    "parse_duration_string",
    "priority_ms",
    "queue",
    "resolve_delay",
    "resolve_idempotency_ttl",
    "resolve_machine",
    "resolve_ttl",
    "to_seconds",
]
