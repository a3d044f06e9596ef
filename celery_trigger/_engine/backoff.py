"""How long to wait before the next try: the retry formula and rate-limit reset headers.

``next_retry_delay_ms`` is SEMANTICS §1.2's formula, shared by task retries and the ``retry``
helpers; ``reset_delay_ms`` reads the reset headers of ``retry.fetch``'s "headers" strategy
(§1.4). Invariants: ``attempt`` is the 1-based number of the attempt that just failed; every
answer is ``None`` (no further try) or a non-negative number of milliseconds, and the formula
never exceeds ``max_timeout_in_ms``. Apart from ``rng`` and the clock, both functions are pure.
"""

from __future__ import annotations

import math
import random
import re
import time
from datetime import datetime, timezone
from typing import Callable

from celery_trigger.options import MAX_ATTEMPTS_CAP, RetryOptions

#: ``reset_format`` values of the "headers" strategy; the first is the default.
RESET_FORMATS = (
    "unix_timestamp_in_ms",
    "unix_timestamp",
    "iso_8601",
    "iso_8601_duration_openai_variant",
)
_INTEGER = re.compile(r"[+-]?\d+")
_OPENAI_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?(?:(\d+)ms)?")


def next_retry_delay_ms(
    opts: RetryOptions, attempt: int, *, rng: Callable[[], float] = random.random
) -> int | None:
    """Milliseconds to wait before the attempt after ``attempt``, or ``None`` for no retry.

    ``round(min(max, R * min * factor ** (attempt - 1)))`` with ``R = 1`` when ``randomize``
    is off and ``R = 1 + rng()`` (uniform in ``[1, 2)``) when on. Like upstream
    (``retrying.ts``), an attempt numbered above ``MAX_ATTEMPTS_CAP`` is never retried,
    whatever ``max_attempts`` says.

    Example::

        >>> opts = RetryOptions(max_attempts=5, factor=1.8, min_timeout_in_ms=500,
        ...                     max_timeout_in_ms=30000, randomize=False)
        >>> [next_retry_delay_ms(opts, n) for n in range(1, 6)]
        [500, 900, 1620, 2916, None]
    """
    if attempt >= opts.max_attempts or attempt > MAX_ATTEMPTS_CAP:
        return None
    spread = 1.0 + rng() if opts.randomize else 1.0
    try:
        raw = spread * opts.min_timeout_in_ms * opts.factor ** (attempt - 1)
    except OverflowError:  # a float factor to a high power; the cap applies anyway
        raw = math.inf
    # floor(x + 0.5) is JavaScript's Math.round; Python's round() would round half to even.
    return math.floor(min(opts.max_timeout_in_ms, raw) + 0.5)


def reset_delay_ms(header: str | None, fmt: str, *, now_ms: float | None = None) -> float | None:
    """Milliseconds until the instant a rate-limit reset header names; ``None`` if unreadable.

    A reset instant in the past gives ``0``. Example: ``reset_delay_ms("1700000001500",
    "unix_timestamp_in_ms", now_ms=1700000000000) == 1500.0``.
    """
    now_ms = time.time() * 1000 if now_ms is None else now_ms
    reset = _reset_at_ms((header or "").strip(), fmt, now_ms)
    return None if reset is None else max(0.0, reset - now_ms)


def _reset_at_ms(text: str, fmt: str, now_ms: float) -> float | None:
    if not text:
        return None
    if fmt in ("unix_timestamp_in_ms", "unix_timestamp"):
        scale = 1 if fmt == "unix_timestamp_in_ms" else 1000
        return float(int(text) * scale) if _INTEGER.fullmatch(text) else None
    if fmt == "iso_8601":
        try:  # Python 3.10's fromisoformat does not read the "Z" suffix
            at = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
        except ValueError:
            return None
        return (at if at.tzinfo else at.replace(tzinfo=timezone.utc)).timestamp() * 1000
    match = _OPENAI_DURATION.fullmatch(text)  # "6m0s", "1.5s", "20ms"
    if match is None:
        return None
    days, hours, minutes, seconds, millis = match.groups()
    total_s = ((int(days or 0) * 24 + int(hours or 0)) * 60 + int(minutes or 0)) * 60
    return now_ms + (total_s + float(seconds or 0)) * 1000 + int(millis or 0)


__all__ = ["RESET_FORMATS", "next_retry_delay_ms", "reset_delay_ms"]
