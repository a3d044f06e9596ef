"""Calling lifecycle hooks (SEMANTICS §1.5) and resolving ``catch_error`` (§1.3).

Hooks are called with keyword arguments filtered to what each function accepts, so
``def on_success(payload, ctx)`` and ``def on_success(payload, *, output, **_)`` both work.
Global hooks run before the task's own hook of the same kind, in registration order.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from ..options import coerce_retry
from .backoff import next_retry_delay_ms
from .registry import TaskSpec, global_hooks

logger = logging.getLogger("celery_trigger")


@lru_cache(maxsize=1024)
def _accepted(fn: Callable[..., Any]) -> tuple[frozenset[str], bool]:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return frozenset(), True
    names = frozenset(p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


def call(fn: Callable[..., Any], **available: Any) -> Any:
    """Call ``fn`` with the subset of ``available`` keyword arguments it accepts."""
    names, var_kw = _accepted(fn)
    kwargs = available if var_kw else {k: v for k, v in available.items() if k in names}
    return fn(**kwargs)


def chain(
    kind: str,
    defn: TaskSpec | None,
    extra_globals: list[Callable[..., Any]] | None = None,
) -> list[Callable[..., Any]]:
    """Hooks of one kind in call order: config hooks, global hooks, then the task's own."""
    fns = list(extra_globals or []) + global_hooks.get(kind)
    own = defn.hooks.get(kind) if defn is not None else None
    if own is not None:
        fns.append(own)
    return fns


def run_all(fns: list[Callable[..., Any]], *, swallow: bool, **available: Any) -> None:
    """Run hooks in order. With ``swallow`` an error is logged and the rest still run."""
    for fn in fns:
        if swallow:
            try:
                call(fn, **available)
            except Exception:
                logger.exception(
                    "celery-trigger: hook %r raised; the run outcome is unchanged",
                    getattr(fn, "__qualname__", fn),
                )
        else:
            call(fn, **available)


@dataclass(frozen=True)
class CatchDecision:
    """What ``catch_error`` asked for. ``retry_delay_ms`` None means: fail now."""

    handled: bool
    retry_delay_ms: float | None = None
    error: BaseException | None = None


def resolve_catch_error(
    fns: list[Callable[..., Any]], now: datetime, default_delay_ms: int | None, **available: Any
) -> CatchDecision:
    """Ask each catch_error hook in turn (task first) until one returns a value (§1.3)."""
    for fn in fns:
        result = call(fn, **available)
        if result is None:
            continue
        if not isinstance(result, dict):
            raise TypeError(f"catch_error must return None or a dict, got {type(result).__name__}")
        error = result.get("error")
        if result.get("skip_retrying"):
            return CatchDecision(True, None, error)
        if result.get("retry_at") is not None:
            retry_at: datetime = result["retry_at"]
            if retry_at.tzinfo is None:  # a naive instant is taken as UTC, not a crash
                retry_at = retry_at.replace(tzinfo=timezone.utc)
            delay = max(0.0, (retry_at - now).total_seconds() * 1000)
            return CatchDecision(True, delay, error)
        if result.get("retry_delay_in_ms") is not None:
            return CatchDecision(True, max(0.0, float(result["retry_delay_in_ms"])), error)
        if result.get("retry") is not None:
            options = coerce_retry(result["retry"])
            assert options is not None
            attempt = available["ctx"].attempt.number
            return CatchDecision(True, next_retry_delay_ms(options, attempt), error)
        return CatchDecision(True, None, error)
    return CatchDecision(False, default_delay_ms, None)
