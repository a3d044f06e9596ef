"""One asyncio event loop per worker process, on a daemon thread, for ``async def`` runs.

Celery has no native coroutine tasks; ``asyncio.run`` per task would close the loop that
cached async clients (httpx, redis.asyncio) are bound to. The loop is created lazily and
again after a fork (prefork children never share their parent's loop).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from typing import Any

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_pid = 0


def loop() -> asyncio.AbstractEventLoop:
    """The process's run loop, started on first use."""
    global _loop, _pid
    with _lock:
        if _loop is None or _pid != os.getpid() or not _loop.is_running():
            new_loop = asyncio.new_event_loop()
            ready = threading.Event()

            def _serve() -> None:
                asyncio.set_event_loop(new_loop)
                new_loop.call_soon(ready.set)
                new_loop.run_forever()

            threading.Thread(target=_serve, name="celery-trigger-asyncio", daemon=True).start()
            ready.wait()
            _loop, _pid = new_loop, os.getpid()
        return _loop


def run_coroutine(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` on the process loop and block this (worker) thread for its result.

    An interrupt delivered to the waiting thread (max duration, cancel) cancels the future.
    """
    future = asyncio.run_coroutine_threadsafe(coro, loop())
    try:
        while True:
            try:
                return future.result(timeout=0.05)
            except concurrent.futures.TimeoutError:  # not the builtin before Python 3.11
                continue
    except BaseException:
        future.cancel()
        raise
