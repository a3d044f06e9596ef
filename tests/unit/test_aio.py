"""The per-process asyncio loop that runs ``async def`` tasks (``_engine/aio.py``)."""

from __future__ import annotations

import asyncio

from celery_trigger._engine import aio


async def _slow(value: int) -> int:
    await asyncio.sleep(0.3)
    return value


def test_a_coroutine_longer_than_the_poll_interval_returns_its_result() -> None:
    """§2 async runs, issue 12 item 8: a run longer than the 50 ms poll returns its value on
    every supported Python (3.10's ``concurrent.futures.TimeoutError`` is not the builtin)."""
    # When a 300 ms coroutine runs on the process loop
    result = aio.run_coroutine(_slow(7))
    # Then its value comes back
    assert result == 7
