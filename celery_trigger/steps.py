"""Durable memoisation of side effects between waits (``ct.steps.run``).

Example::

    @ct.task(id="charge")
    def charge(payload, ctx):
        receipt = ct.steps.run("charge-card", stripe_charge, payload["amount"])
        ct.wait.for_(hours=1)          # code above re-executes on resume...
        return receipt                  # ...but stripe_charge ran once per attempt
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._engine import journal


def run(name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn(*args, **kwargs)`` once per attempt; on replay return the recorded result.

    The result must be JSON-serialisable; what is returned is its JSON round trip, the same
    value on the first execution and on every replay.
    """
    if not isinstance(name, str) or not name:
        raise ValueError("steps.run needs a non-empty name")
    if not callable(fn):
        raise TypeError("steps.run needs a callable")
    return journal.step(name, fn, args, kwargs)
