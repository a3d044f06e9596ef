"""The run's logger (SEMANTICS §14): ``logger.*`` records of the executing attempt.

Each record within the threshold (``TRIGGER_LOG_LEVEL`` > ``log_level`` > ``"info"``) goes
(a) to stdlib logging, logger ``celery_trigger.run``, with the run id, task, attempt and tags
in ``extra``, and to OpenTelemetry logs when a logger provider is configured (``otel_logs``);
(b) to the run's own log (``LogStore.append_logs``), capped per run by ``LOG_MAX_ENTRIES``
and ``LOG_MAX_BYTES`` (oldest dropped and counted), expiring ``LOG_TTL_MS`` after its last
record. Outside a run every call is a no-op. A log write that fails (store down) is reported
on stdlib logging and never fails the run.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from typing import Any

from .._config import log_threshold
from .._serialization import dumps, loads
from ..errors import StoreUnavailableError
from . import otel_logs, tracing
from .engine import Engine
from .state import RunState

#: Record levels and their rank; ``log`` counts as ``info``.
LEVELS = {"debug": 10, "log": 20, "info": 20, "warn": 30, "error": 40}
#: Thresholds: a record is kept when its rank is at least the threshold's.
THRESHOLDS = {"none": 100, "error": 40, "warn": 30, "info": 20, "debug": 10}
_STDLIB = {10: logging.DEBUG, 20: logging.INFO, 30: logging.WARNING, 40: logging.ERROR}
_NAMES = {10: "debug", 20: "info", 30: "warn", 40: "error"}
#: At most this many attributes per record, each value at most this many characters (§14.1).
MAX_ATTRIBUTES = 256
MAX_VALUE_CHARS = 131_072
NULL_SENTINEL = "$@null(("
CIRCULAR_SENTINEL = "$@circular(("
#: Per-run caps of the run's own log, and how long it is kept after its last record.
LOG_MAX_ENTRIES = 5_000
LOG_MAX_BYTES = 2 * 1024 * 1024
LOG_TTL_MS = 28 * 24 * 3600 * 1000

std_logger = logging.getLogger("celery_trigger.run")


@dataclass(frozen=True)
class RunLog:
    """What every record of one attempt carries, and the attempt's threshold rank."""

    engine: Engine
    run_id: str
    task_id: str
    attempt: int
    tags: tuple[str, ...]
    threshold: int


_current: ContextVar[RunLog | None] = ContextVar("celery_trigger_run_log", default=None)


def begin(engine: Engine, state: RunState) -> Token[RunLog | None]:
    """The attempt starts: records from here on belong to it."""
    level = log_threshold(engine.config.log_level)
    log = RunLog(
        engine,
        state.run_id,
        state.task_id,
        state.attempt,
        tuple(state.ctx.run.tags),
        THRESHOLDS[level],
    )
    return _current.set(log)


def end() -> None:
    """The attempt's run phase is over: records from here on are dropped."""
    _current.set(None)


def current() -> RunLog | None:
    """The executing attempt's log context (None outside a run's attempt)."""
    return _current.get()


def std_extra(log: RunLog, attributes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``extra`` of a stdlib record about ``log``'s attempt."""
    return {
        "run_id": log.run_id,
        "task_id": log.task_id,
        "attempt": log.attempt,
        "tags": log.tags,
        "attributes": dict(attributes or {}),
    }


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested properties as dotted attributes: ``{"a": {"b": 1}}`` → ``{"a.b": 1}``, list
    items as ``a.[0]``, None as a sentinel, cycles marked; at most ``MAX_ATTRIBUTES``."""
    out: dict[str, Any] = {}
    _flatten(values, prefix, out, set())
    return out


def _flatten(value: Any, prefix: str, out: dict[str, Any], seen: set[int]) -> None:
    if len(out) >= MAX_ATTRIBUTES:
        return
    if isinstance(value, (Mapping, list, tuple)):
        if id(value) in seen:
            out[prefix] = CIRCULAR_SENTINEL
            return
        seen = seen | {id(value)}
        items = (
            value.items()
            if isinstance(value, Mapping)
            else ((f"[{i}]", v) for i, v in enumerate(value))
        )
        for key, item in items:
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out, seen)
        return
    if value is None:
        out[prefix] = NULL_SENTINEL
    elif isinstance(value, float) and not math.isfinite(value):
        out[prefix] = str(value)  # JSON has no NaN or infinity
    elif isinstance(value, (bool, int, float)):
        out[prefix] = value
    else:
        out[prefix] = str(value)[:MAX_VALUE_CHARS]


def emit(
    level: str,
    message: str,
    properties: Mapping[str, Any] | None,
    extra: Mapping[str, Any],
    *,
    stdlib: bool = True,
    force: bool = False,
) -> None:
    """One ``logger.<level>`` call: dropped outside a run or below the threshold (unless
    ``force``); ``stdlib=False`` writes the run's own log only."""
    log = _current.get()
    rank = LEVELS[level]
    if log is None or (rank < log.threshold and not force):
        return
    attributes = flatten({**(properties or {}), **extra})
    span_id, trace_id = tracing.current_ids()
    if stdlib:
        std_logger.log(_STDLIB[rank], message, extra=std_extra(log, attributes))
        otel_logs.emit(std_logger, _STDLIB[rank], message, {**otel_logs.run_attributes(
            log.run_id, log.task_id, log.attempt, log.tags), **attributes})  # fmt: skip
    entry = {
        "timestamp": int(time.time() * 1000),
        "level": _NAMES[rank],
        "message": str(message),
        "attributes": attributes,
        "attempt": log.attempt,
        "span_id": span_id,
        "trace_id": trace_id,
    }
    try:
        log.engine.store.append_logs(
            log.run_id,
            [dumps(entry, what="log record")],
            max_count=LOG_MAX_ENTRIES,
            max_bytes=LOG_MAX_BYTES,
            ttl_ms=LOG_TTL_MS,
        )
    except StoreUnavailableError as exc:
        std_logger.warning("the run log of %s was not stored: %s", log.run_id, exc)


def read(engine: Engine, run_id: str, limit: int) -> tuple[int, list[dict[str, Any]]]:
    """(entries dropped by the caps, the newest ``limit`` entries oldest first, as dicts)."""
    dropped, rows = engine.store.read_logs(run_id, limit)
    return dropped, [loads(text) for _, text in rows]
