"""Case ``idle``: Redis commands per second from one idle worker, ct against bare Celery.

Each worker (bare Celery with its defaults, then ct) is started on its own, warmed up with
8 round trips, left alone for 2 s, and then Redis's ``INFO commandstats`` is read before and
after a window of ``idle_window_s`` seconds in which nothing is published. Commands run
inside Lua scripts count as well (one ``EVALSHA`` of a script making two ``ZRANGEBYSCORE``
calls counts 3). Only the worker is connected during the window (the producer's engine runs
no threads), so the delta is the worker's.

Headline ``ratio``: bare commands/s ÷ ct commands/s (higher is better for ct). Goal: ct ≤ 5/s.
"""

from __future__ import annotations

import time
from typing import Any

from ._harness import Harness
from ._infra import CpuMeter, Worker, log

GOAL_PER_S = 5.0
SETTLE_S = 2.0


def _calls(h: Harness) -> dict[str, int]:
    stats = h.r.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def _window(h: Harness, worker: Worker, seconds: float) -> dict[str, Any]:
    time.sleep(SETTLE_S)
    before = _calls(h)
    meter = CpuMeter({"worker": worker.pids(), "redis": [h.redis_pid()]}).start()
    time.sleep(seconds)
    cpu = meter.stop()
    after = _calls(h)
    # INFO itself is counted once in the delta (the ``after`` read).
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    delta["info"] = delta.get("info", 0) - 1
    delta = {k: v for k, v in sorted(delta.items(), key=lambda kv: -kv[1]) if v > 0}
    total = sum(delta.values())
    return {
        "window_s": seconds,
        "commands": total,
        "commands_per_s": round(total / seconds, 2),
        "per_command": delta,
        "cpu_s": cpu,
    }


def idle(h: Harness, window_s: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    h.flush()
    with h.bare_worker("default") as w:
        log("  idle: bare worker")
        out["bare_default"] = _window(h, w, window_s)
    h.flush()
    with h.ct_worker() as w:
        log("  idle: ct worker")
        out["ct"] = _window(h, w, window_s)
    ct_rate = out["ct"]["commands_per_s"]
    bare_rate = out["bare_default"]["commands_per_s"]
    return {
        "variants": out,
        "ratio": round(bare_rate / ct_rate, 3) if ct_rate else None,
        "ratio_definition": "bare idle worker commands/s ÷ ct idle worker commands/s",
        "goal": {"ct_commands_per_s_max": GOAL_PER_S, "met": ct_rate <= GOAL_PER_S},
    }
