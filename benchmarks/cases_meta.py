"""Case ``meta``: the cost of idempotency keys and of metadata-heavy runs, against plain
triggers and runs of celery-trigger itself (there is no bare-Celery equivalent).

1. Producer side, no worker: N sequential ``noop.trigger(payload)`` ("plain") against N
   ``noop.trigger(payload, idempotency_key=<unique>)`` ("keyed": the key is claimed in the
   create script, and a run is created) and N ``noop.trigger(payload, idempotency_key=<one
   key>)`` after a first one ("cached": every call returns the existing run). Every timed
   block starts from an empty Redis; the variants alternate and rotate order per repetition.
2. Worker side: sequential trigger→COMPLETED round trips on a warm prefork ``-c 2`` worker of
   a run making 1,000 ``ct.metadata.increment`` calls ("meta") against a no-op run ("noop"),
   in alternating blocks; the run's flushes (every second and at the end) are included. The
   stored ``n`` of the last meta run is checked to be exactly 1,000.

Ratios are ``plain / variant`` (time), so 1.0 means no extra cost and 0.5 twice the time.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from ._harness import CT_QUEUE, Harness
from ._infra import CpuMeter, Worker, log, spread, summarize_ms

POLL_S = 0.0005
WARMUP = 100


def _payload(i: int) -> dict[str, Any]:
    return {"i": i, "name": "bench"}


def _timed(h: Harness, fn: Any) -> float:
    h.flush()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _producer(h: Harness, n: int, reps: int) -> dict[str, Any]:
    from benchmarks import app_meta

    trigger = app_meta.noop.trigger
    payloads = [_payload(i) for i in range(n)]
    for i in range(WARMUP):
        trigger(_payload(i))
        trigger(_payload(i), idempotency_key=f"warm-{i}")

    def plain() -> None:
        for p in payloads:
            trigger(p)

    def keyed() -> None:
        for i, p in enumerate(payloads):
            trigger(p, idempotency_key=f"key-{i}")

    def cached() -> None:
        trigger(payloads[0], idempotency_key="same")
        for p in payloads[1:]:
            trigger(p, idempotency_key="same")

    fns = {"plain": plain, "keyed": keyed, "cached": cached}
    secs: dict[str, list[float]] = {k: [] for k in fns}
    names = list(fns)
    for rep in range(reps):
        order = names[rep % 3 :] + names[: rep % 3]
        for name in order:
            secs[name].append(_timed(h, fns[name]))
        log(
            "  meta triggers rep {}/{}: {}".format(
                rep + 1, reps, ", ".join(f"{k} {n / v[-1]:.0f}/s" for k, v in secs.items())
            )
        )

    def side(name: str) -> dict[str, Any]:
        med = statistics.median(secs[name])
        return {
            "seconds": spread(secs[name]),
            "per_s": round(n / med, 1),
            "us_per_call": round(med / n * 1e6, 1),
        }

    def ratio(name: str) -> dict[str, float]:
        return spread([p / v for p, v in zip(secs["plain"], secs[name], strict=True)])

    return {
        "plain": {"what": "noop.trigger(payload) x N", **side("plain")},
        "keyed": {"what": "noop.trigger(payload, idempotency_key=<unique>) x N", **side("keyed")},
        "cached": {
            "what": "noop.trigger(payload, idempotency_key=<one key>) x N: the "
            "first creates the run, the rest return it",
            **side("cached"),
        },
        "ratio_keyed": ratio("keyed"),
        "ratio_cached": ratio("cached"),
    }


def _meta_worker(h: Harness) -> Worker:
    def ready(w: Worker) -> None:
        ids = [h.ct.noop.trigger(None).id for _ in range(8)]
        deadline = time.monotonic() + 40
        while h.ct_final_count(ids) < len(ids):
            if not w.alive() or time.monotonic() > deadline:
                raise SystemExit(f"meta worker did not warm up; see {w.log_path}")
            time.sleep(0.01)

    return Worker("benchmarks.app_meta", CT_QUEUE, {}, tag="ct-meta", ready=ready)


def _roundtrip(h: Harness, task: Any, payload: Any) -> tuple[float, str]:
    t = time.perf_counter()
    run_id = task.trigger(payload).id
    key = h.keys.run(run_id)
    deadline = t + 30
    while True:
        status = h.r_store.hget(key, "status")
        if status == b"COMPLETED":
            return time.perf_counter() - t, run_id
        if time.perf_counter() > deadline or status in (b"FAILED", b"CRASHED"):
            raise RuntimeError(f"run {run_id} did not complete (status {status!r})")
        time.sleep(POLL_S)


def _worker_side(h: Harness, runs: int, increments: int, block: int = 5) -> dict[str, Any]:
    from benchmarks import app_meta

    h.flush()
    variants = {"noop": (app_meta.noop, None), "meta": (app_meta.meta_heavy, {"n": increments})}
    lat: dict[str, list[float]] = {k: [] for k in variants}
    last_meta = ""
    with _meta_worker(h) as w:
        for task, payload in variants.values():
            for _ in range(3):
                _roundtrip(h, task, payload)
        meter = CpuMeter({"worker": w.pids(), "redis": [h.redis_pid()]}).start()
        for b in range(0, runs, block):
            names = list(variants) if (b // block) % 2 == 0 else list(variants)[::-1]
            for name in names:
                task, payload = variants[name]
                for _ in range(min(block, runs - b)):
                    seconds, run_id = _roundtrip(h, task, payload)
                    lat[name].append(seconds)
                    if name == "meta":
                        last_meta = run_id
        cpu = meter.stop()
    stored = h.r_store.hget(h.keys.run(last_meta), "meta") or b""
    if stored != b'{"n":%d}' % increments:
        raise RuntimeError(f"metadata of {last_meta} is {stored!r}, not n={increments}")
    stats = {k: summarize_ms(v) for k, v in lat.items()}
    added = stats["meta"]["p50_ms"] - stats["noop"]["p50_ms"]
    log(f"  meta run p50 {stats['meta']['p50_ms']:.2f} ms vs noop {stats['noop']['p50_ms']:.2f} ms")
    return {
        "noop": {"what": "noop run: trigger, poll status until COMPLETED", **stats["noop"]},
        "meta": {
            "what": f"run making {increments} metadata.increment calls (stored n "
            f"checked = {increments})",
            **stats["meta"],
        },
        "added_p50_ms": round(added, 3),
        "us_per_increment_p50": round(added * 1000 / increments, 2),
        "worker_cpu_s": cpu.get("worker_cpu_s"),
        "redis_cpu_s": cpu.get("redis_cpu_s"),
        "ratio": round(stats["noop"]["p50_ms"] / stats["meta"]["p50_ms"], 3),
    }


def meta(h: Harness, size: dict[str, int]) -> dict[str, Any]:
    """The ``meta`` case (see the module docstring)."""
    producer = _producer(h, size["meta_trigger_n"], size["meta_trigger_reps"])
    worker = _worker_side(h, size["meta_runs"], size["meta_increments"])
    return {
        "params": {
            "trigger_n": size["meta_trigger_n"],
            "reps": size["meta_trigger_reps"],
            "runs": size["meta_runs"],
            "increments": size["meta_increments"],
            "worker": "prefork -c 2",
            "poll_interval_ms": POLL_S * 1000,
        },
        "triggers": producer,
        "metadata_run": worker,
        "ratio": producer["ratio_keyed"]["median"],
        "ratios": {
            "idempotent_trigger": producer["ratio_keyed"]["median"],
            "cached_idempotent_trigger": producer["ratio_cached"]["median"],
            "metadata_heavy_run": worker["ratio"],
        },
        "ratio_definition": "plain time / variant time (1.0 = no extra cost, 0.5 = twice as "
        "long): 'ratio' is keyed vs plain trigger; ratios.* also give the "
        "cached trigger and the 1,000-increment run vs a no-op run",
    }
