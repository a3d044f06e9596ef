"""The cron dialect of schedules (SEMANTICS §10.2): parse, describe, compute occurrences.

Five fields (minute, hour, day of month, month, day of week) with lists, ranges, steps
(``*/n``, ``a/n``, ``a-b/n``), month and weekday names, ``?`` as ``*``, ``L`` (last day of the
month), ``nL`` (last weekday n of the month), ``n#k`` (k-th weekday n) and the ``@daily``
family of aliases. Six fields are rejected ("CRON expressions with seconds are not allowed");
``W`` and Jenkins ``H`` are not supported. Day of week 0 and 7 are Sunday. When both day
fields are restricted, a day matches if either matches.

Occurrences are evaluated in the schedule's IANA zone (``zoneinfo``) with the DST rules of
§10.2: a wall time skipped by a spring-forward is moved forward by the gap (PEP 495's
``fold=0`` mapping does exactly that), a wall time repeated by a fall-back fires once, at its
first instant, unless the hour field is ``*``: then the pattern fires in every real hour,
both repeated ones included.

croniter (a dependency of the package) is not used here: its ranges wrap around (``5-3``),
it silently ignores ``W``, cannot mix ``n#k`` with plain weekdays and has its own DST
behaviour; the unit tests use it as an oracle for the plain subset in UTC instead.

Invariants: ``next_after`` returns an aware UTC datetime strictly after its argument, on a
whole minute; successive calls are strictly increasing; parsing never consults the clock.
"""

from __future__ import annotations

import calendar
import functools
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

#: How far ahead ``next_after`` looks for a matching day (28 years covers every calendar).
MAX_SCAN_DAYS = 366 * 28
_MARGIN = timedelta(hours=3)
SECONDS_MESSAGE = "CRON expressions with seconds are not allowed"
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
)
_NOT_ZONES = frozenset({"Factory", "localtime", "posixrules"})


@dataclass(frozen=True)
class Token:
    """One comma-separated item: ``kind`` is ``all``, ``range`` (start, end, step), ``last``
    (``L``), ``nth`` (weekday ``start``, ``step`` = k) or ``lastwd`` (weekday ``start``)."""

    kind: str
    start: int = 0
    end: int = 0
    step: int = 1


@dataclass(frozen=True)
class CronExpression:
    """A parsed five-field expression. Build it with ``parse``."""

    expression: str
    fields: tuple[tuple[Token, ...], ...]
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    last_day: bool
    nth: frozenset[tuple[int, int]]
    last_weekdays: frozenset[int]
    dom_restricted: bool
    dow_restricted: bool

    @property
    def every_hour(self) -> bool:
        return len(self.hours) == 24


def parse(expression: str) -> CronExpression:
    """Parse a cron expression; raises ``ValueError`` naming the problem.

    Example: ``parse("0 9 * * MON-FRI").hours == (9,)``.
    """
    if not isinstance(expression, str):
        raise TypeError("cron must be a string")
    text = " ".join(expression.split())
    if not text:
        raise ValueError("CRON expression is required")
    parts = ALIASES.get(text.lower(), text).split(" ")
    if text.startswith("@") and text.lower() not in ALIASES:
        raise ValueError(f"unknown cron alias {text!r} (known: {', '.join(ALIASES)})")
    if len(parts) > 5:
        raise ValueError(SECONDS_MESSAGE)
    if len(parts) < 5:
        raise ValueError(
            f"invalid cron expression {text!r}: expected 5 fields "
            "(minute hour day-of-month month day-of-week)"
        )
    fields = tuple(_parse_field(part, index) for index, part in enumerate(parts))
    sets = [_expand(tokens, index) for index, tokens in enumerate(fields)]
    dow = {d % 7 for d in sets[4]}
    return CronExpression(
        expression=text,
        fields=fields,
        minutes=tuple(sorted(sets[0])),
        hours=tuple(sorted(sets[1])),
        days=frozenset(sets[2]),
        months=frozenset(sets[3]),
        weekdays=frozenset(dow),
        last_day=any(t.kind == "last" for t in fields[2]),
        nth=frozenset((t.start % 7, t.step) for t in fields[4] if t.kind == "nth"),
        last_weekdays=frozenset(t.start % 7 for t in fields[4] if t.kind == "lastwd"),
        dom_restricted=not (len(sets[2]) == 31 and all(t.kind != "last" for t in fields[2])),
        dow_restricted=not (len(dow) == 7 and all(t.kind in ("all", "range") for t in fields[4])),
    )


def _value(text: str, index: int) -> int:
    name, low, high = _FIELDS[index]
    names = MONTHS if index == 3 else WEEKDAYS if index == 4 else ()
    upper = text.upper()
    if upper in names:
        return names.index(upper) + (1 if index == 3 else 0)
    if not text.isdigit():
        raise ValueError(f"invalid {name} value {text!r}")
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{name} value {value} is out of range {low}-{high}")
    return value


def _parse_field(part: str, index: int) -> tuple[Token, ...]:
    return tuple(_parse_token(item, index) for item in part.split(","))


def _parse_token(item: str, index: int) -> Token:
    name, low, high = _FIELDS[index]
    upper = item.upper()
    if not item:
        raise ValueError(f"empty item in the {name} field")
    if "W" in upper.replace("WED", ""):
        raise ValueError(f"'W' (nearest weekday) is not supported in the {name} field")
    if upper in ("*", "?"):
        if upper == "?" and index < 2:
            raise ValueError(f"'?' is only allowed in the day fields, not in {name}")
        return Token("all", low, high)
    if index == 2 and upper == "L":
        return Token("last")
    if index == 4 and upper.endswith("L") and len(upper) > 1:
        return Token("lastwd", _value(item[:-1], index))
    if index == 4 and "#" in item:
        day, _, k = item.partition("#")
        if not k.isdigit() or not 1 <= int(k) <= 5:
            raise ValueError(f"invalid day-of-week occurrence {item!r} (expected n#1 to n#5)")
        return Token("nth", _value(day, index), step=int(k))
    base, slash, step_text = item.partition("/")
    step = 1
    if slash:
        if not step_text.isdigit() or int(step_text) == 0:
            raise ValueError(f"invalid step {step_text!r} in the {name} field")
        step = int(step_text)
    if base in ("*", "?"):
        return Token("range", low, high, step)
    start_text, dash, end_text = base.partition("-")
    start = _value(start_text, index)
    end = _value(end_text, index) if dash else (high if slash else start)
    if end < start:
        raise ValueError(f"invalid range {base!r} in the {name} field (start after end)")
    return Token("range", start, end, step)


def _expand(tokens: tuple[Token, ...], index: int) -> set[int]:
    out: set[int] = set()
    for token in tokens:
        if token.kind in ("all", "range"):
            out.update(range(token.start, token.end + 1, token.step))
    if index == 4 and 7 in out:
        out.discard(7)
        out.add(0)
    return out


# occurrences ------------------------------------------------------------------------------
def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone ``name``; raises ``ValueError`` for a name outside ``timezone_names()``."""
    if not isinstance(name, str) or name not in timezone_names():
        raise ValueError(
            f"Invalid timezone {name!r}: use an IANA name such as "
            "'America/New_York' (see schedules.timezones())"
        )
    return zoneinfo.ZoneInfo(name)


@functools.lru_cache(maxsize=1)
def timezone_names() -> frozenset[str]:
    """Every IANA zone name this system's database knows."""
    return frozenset(zoneinfo.available_timezones() - _NOT_ZONES) | {"UTC"}


def day_matches(cron: CronExpression, day: date) -> bool:
    """True when ``day`` (a local date) satisfies the month and both day fields."""
    if day.month not in cron.months:
        return False
    length = calendar.monthrange(day.year, day.month)[1]
    dom = day.day in cron.days or (cron.last_day and day.day == length)
    weekday = (day.weekday() + 1) % 7  # Sunday = 0
    dow = (
        weekday in cron.weekdays
        or (weekday, (day.day - 1) // 7 + 1) in cron.nth
        or (weekday in cron.last_weekdays and day.day + 7 > length)
    )
    if cron.dom_restricted and cron.dow_restricted:
        return dom or dow
    if cron.dom_restricted:
        return dom
    if cron.dow_restricted:
        return dow
    return True


def _instants(cron: CronExpression, wall: datetime, tz: zoneinfo.ZoneInfo) -> list[datetime]:
    """The UTC instants at which local wall time ``wall`` fires (0, 1 or 2 of them)."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(timezone.utc)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(timezone.utc)
    if first == second:
        return [first]
    if first.astimezone(tz).replace(tzinfo=None) != wall:
        return [first]  # skipped by a spring-forward: fold=0 moves it forward by the gap
    # repeated by a fall-back: once, at the first instant, unless the pattern is hourly
    return [first, second] if cron.every_hour else [first]


def _steady(tz: zoneinfo.ZoneInfo, moment: datetime) -> bool:
    """True when the zone's UTC offset is the same from 3 hours before to 3 hours after."""
    return (
        (moment - _MARGIN).astimezone(tz).utcoffset()
        == (moment + _MARGIN).astimezone(tz).utcoffset()
        == moment.astimezone(tz).utcoffset()
    )


def _walls(cron: CronExpression, start: datetime) -> Iterator[datetime]:
    """Matching local wall times at or after naive ``start``, in wall-clock order."""
    first = start.date()
    for offset in range(MAX_SCAN_DAYS):
        day = first + timedelta(days=offset)
        if not day_matches(cron, day):
            continue
        for hour in cron.hours:
            if offset == 0 and hour < start.hour:
                continue
            for minute in cron.minutes:
                wall = datetime(day.year, day.month, day.day, hour, minute)
                if wall >= start:
                    yield wall


def next_after(cron: CronExpression, after: datetime, tz: zoneinfo.ZoneInfo) -> datetime:
    """The first occurrence strictly after ``after`` (aware), as an aware UTC datetime.

    Example: ``next_after(parse("0 5 * * *"), t, ZoneInfo("Asia/Tokyo"))`` is 20:00 UTC.
    """
    if after.tzinfo is None:
        raise ValueError("after must be an aware datetime")
    after = after.astimezone(timezone.utc)
    # Near a DST transition a wall time maps to an instant up to a few hours away from where
    # its position says, so candidates within a 3-hour margin are compared; elsewhere wall
    # order is time order and the first candidate wins.
    start = after.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
    if not _steady(tz, after):
        start -= _MARGIN
    best: datetime | None = None
    limit = datetime.max
    for wall in _walls(cron, start):
        if wall > limit:
            break
        for instant in _instants(cron, wall, tz):
            if instant > after and (best is None or instant < best):
                best = instant
                limit = best.astimezone(tz).replace(tzinfo=None) + _MARGIN
                if _steady(tz, best):
                    return best
    if best is None:
        raise ValueError(f"CRON expression {cron.expression!r} never matches a date")
    return best


def occurrences(
    cron: CronExpression, after: datetime, tz: zoneinfo.ZoneInfo, count: int
) -> list[datetime]:
    """The next ``count`` occurrences strictly after ``after``, increasing."""
    out: list[datetime] = []
    current = after
    for _ in range(count):
        current = next_after(cron, current, tz)
        out.append(current)
    return out


# description ------------------------------------------------------------------------------
_ORDINALS = ("first", "second", "third", "fourth", "fifth")
_DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _describe_items(
    tokens: tuple[Token, ...], name: Callable[[int], str], unit: str = "value"
) -> str:
    """``Monday through Friday``, ``every 3rd month``, ``1, 15 and 20``..."""
    out: list[str] = []
    for t in tokens:
        if t.kind == "range" and t.step > 1:
            out.append(f"every {_nth(t.step)} {unit} from {name(t.start)} to {name(t.end)}")
        elif t.kind == "range" and t.start != t.end:
            out.append(f"{name(t.start)} through {name(t.end)}")
        elif t.kind == "range":
            out.append(name(t.start))
    return _join(out) if out else ""


def _nth(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _single(tokens: tuple[Token, ...]) -> int | None:
    if len(tokens) == 1 and tokens[0].kind == "range" and tokens[0].start == tokens[0].end:
        return tokens[0].start
    return None


def _step_of(tokens: tuple[Token, ...], low: int, high: int) -> int | None:
    """n for a field that is exactly ``*/n``."""
    if (
        len(tokens) == 1
        and tokens[0].kind == "range"
        and tokens[0].start == low
        and tokens[0].end == high
        and tokens[0].step > 1
    ):
        return tokens[0].step
    return None


def _describe_time(cron: CronExpression) -> str:
    minute_t, hour_t = cron.fields[0], cron.fields[1]
    minute, hour = _single(minute_t), _single(hour_t)
    every_minute, every_hour = len(cron.minutes) == 60, cron.every_hour
    if every_minute and every_hour:
        return "Every minute"
    minute_step = _step_of(minute_t, 0, 59)
    if minute_step is not None and every_hour:
        return f"Every {minute_step} minutes"
    if minute is not None and hour is not None:
        return f"At {hour:02d}:{minute:02d}"
    if minute is not None and len(cron.hours) <= 6 and not every_hour:
        return "At " + _join([f"{h:02d}:{minute:02d}" for h in cron.hours])
    hour_step = _step_of(hour_t, 0, 23)
    if minute == 0 and every_hour:
        return "Every hour"
    if minute == 0 and hour_step is not None:
        return f"Every {hour_step} hours"
    if minute_step is not None:
        minutes = f"Every {minute_step} minutes"
    elif minute is not None:
        minutes = f"At {minute} minutes past the hour"
    elif every_minute:
        minutes = "Every minute"
    else:
        minutes = f"At minutes {_describe_items(minute_t, str, 'minute')} past the hour"
    if every_hour:
        return minutes
    if hour_step is not None:
        return f"{minutes}, every {hour_step} hours"
    if len(hour_t) == 1 and hour_t[0].kind == "range" and hour_t[0].step == 1:
        return f"{minutes}, between {hour_t[0].start:02d}:00 and {hour_t[0].end:02d}:59"
    return f"{minutes}, in hours {_describe_items(hour_t, lambda h: f'{h:02d}', 'hour')}"


def _describe_days(cron: CronExpression) -> str:
    parts: list[str] = []
    if cron.dom_restricted:
        dom = (
            [f"day {_describe_items(cron.fields[2], str)} of the month"]
            if any(t.kind == "range" for t in cron.fields[2])
            else []
        )
        if cron.last_day:
            dom.append("the last day of the month")
        parts.append("on " + _join(dom))
    if cron.dow_restricted:
        dow: list[str] = []
        plain = _describe_items(cron.fields[4], lambda d: _DAY_NAMES[d % 7])
        if plain:
            dow.append(plain)
        dow += [
            f"the {_ORDINALS[t.step - 1]} {_DAY_NAMES[t.start % 7]} of the month"
            for t in cron.fields[4]
            if t.kind == "nth"
        ]
        dow += [
            f"the last {_DAY_NAMES[t.start % 7]} of the month"
            for t in cron.fields[4]
            if t.kind == "lastwd"
        ]
        parts.append("on " + _join(dow))
    text = " or ".join(parts)
    if len(cron.months) < 12:
        text += (
            (", " if text else "")
            + "only in "
            + _describe_items(cron.fields[3], lambda m: _MONTH_NAMES[m - 1], "month")
        )
    return text


def describe(cron: CronExpression) -> str:
    """A human-readable description, e.g. ``"At 09:00, on Monday through Friday"``."""
    days = _describe_days(cron)
    return f"{_describe_time(cron)}, {days}" if days else _describe_time(cron)
