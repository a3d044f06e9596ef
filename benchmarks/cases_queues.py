"""Case ``queues``: what concurrency limits cost on a real worker (issue 4, DESIGN §6).

The same N runs of a counting task (as in ``e2e``) go through a ``prefork -c 2`` worker,
published one by one, in four variants, each on a fresh worker and an empty Redis:

- ``unlimited``: the task's own queue, no limit (the default; no slot work at all);
- ``limited``: a queue with ``concurrency_limit=2``, the pool size, so the limit never
  throttles and the difference is the slot bookkeeping (claim, release, hand-over);
- ``keyed``: a queue with ``concurrency_limit=1`` and 100 concurrency keys in turn, so 100
  sub-queues; two runs of one key rarely meet, the rest is bookkeeping again;
- ``limit_1``: the same queue with one key: one run at a time on a two-process worker, for
  reference (it can reach at most about half of ``unlimited``).

Time runs from the first publish to the last run final. ``ratio`` is the worst of
``limited`` and ``keyed`` divided by ``unlimited`` (goal >= 0.8).
"""

from __future__ import annotations

import time
from typing import Any

from ._harness import CT_QUEUE, Harness
from ._infra import CpuMeter, Worker, log, spread, wait_until

TIMEOUT_S = 600.0
KEYS = 100
VARIANTS = ("unlimited", "limited", "keyed", "limit_1")


def _worker(h: Harness) -> Worker:
    from . import app_ct_queues as app

    def ready(w: Worker) -> None:
        ids = [app.count_free.trigger({"key": "warm", "total": 10**9}).id for _ in range(8)]
        deadline = time.monotonic() + 40
        while h.ct_final_count(ids) < len(ids):
            if not w.alive() or time.monotonic() > deadline:
                raise SystemExit(f"queues worker did not warm up; see {w.log_path}")
            time.sleep(0.01)

    return Worker("benchmarks.app_ct_queues", CT_QUEUE, {}, tag="ct-queues", ready=ready)


def _publish(variant: str, payload: dict[str, Any], n: int) -> list[str]:
    from . import app_ct_queues as app

    if variant == "unlimited":
        return [app.count_free.trigger(payload).id for _ in range(n)]
    if variant == "limited":
        return [app.count_limited.trigger(payload).id for _ in range(n)]
    if variant == "keyed":
        return [
            app.count_keyed.trigger(payload, concurrency_key=f"k{i % KEYS}").id for i in range(n)
        ]
    return [app.count_keyed.trigger(payload, concurrency_key="one").id for _ in range(n)]


def _once(h: Harness, variant: str, n: int, rep: int) -> dict[str, Any]:
    h.settle(f"queues {variant}")
    h.flush()
    with _worker(h) as w:
        key = f"benchq:{variant}:{rep}"
        payload = {"key": key, "total": n}
        meter = CpuMeter({"worker": w.pids(), "redis": [h.redis_pid()]}).start()
        t0 = time.time()
        ids = _publish(variant, payload, n)
        wait_until(
            lambda: h.r.get(key + ":done"),
            TIMEOUT_S,
            0.01,
            what=f"{variant}: all {n} task bodies ran",
        )
        final = h.ct_completion(ids, TIMEOUT_S)
        cpu = meter.stop()
        slots = int(h.r_store.zcard(h.keys.slots()))
    total = final["last_final_ts"] - t0
    log(f"  queues {variant:9s} rep {rep + 1}: {n} in {total:.2f}s = {n / total:.0f}/s")
    return {
        "total_s": round(total, 3),
        "per_s": round(n / total, 1),
        "final_statuses": final["statuses"],
        "slots_held_after": slots,
        "worker_cpu_us_per_run": round(cpu["worker_cpu_s"] / n * 1e6, 1),
        "redis_cpu_us_per_run": round(cpu["redis_cpu_s"] / n * 1e6, 1),
        "other_procs_cpu_s": cpu["other_procs_cpu_s"],
    }


def queues(h: Harness, n: int, reps: int) -> dict[str, Any]:
    """Throughput of limited and keyed queues against the same work on an unlimited one."""
    samples: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for rep in range(reps):
        for variant in VARIANTS if rep % 2 == 0 else VARIANTS[::-1]:
            samples[variant].append(_once(h, variant, n, rep))
    rates = {v: spread([s["per_s"] for s in runs]) for v, runs in samples.items()}
    base = rates["unlimited"]["median"]
    ratios = {v: round(rates[v]["median"] / base, 3) for v in VARIANTS if v != "unlimited"}
    return {
        "params": {
            "n": n,
            "reps": reps,
            "worker": "prefork -c 2",
            "keys": KEYS,
            "limited_limit": 2,
            "keyed_limit": 1,
        },
        "per_s": rates,
        "ratio_vs_unlimited": ratios,
        "runs": samples,
        "ratio": min(ratios["limited"], ratios["keyed"]),
        "ratio_definition": "min(limited, keyed) runs/s / unlimited runs/s (goal >= 0.8)",
    }
