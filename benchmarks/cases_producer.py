"""Producer-side cases (no worker running): single-trigger throughput and batch trigger.

Case ``trigger``: N sequential ``noop.trigger(payload)`` against N sequential bare
``noop.apply_async((payload,))`` with the same small payload, after a warm-up of both.
Case ``batch``: one ``noop.batch_trigger`` of 1,000 items against 1,000 bare ``apply_async``
calls, plus two bare variants for context (a shared producer; a shared producer with kombu's
pipelined ``Producer.batch``).

Every timed block starts from an empty Redis, and the two sides alternate within each
repetition (the side that goes first alternates too), so drift hits both equally.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from ._harness import Harness
from ._infra import CpuMeter, log, spread

WARMUP = 200


def _payload(i: int) -> dict[str, Any]:
    return {"i": i, "name": "bench"}


def _timed(h: Harness, fn: Callable[[], Any]) -> dict[str, float]:
    """Run ``fn`` once from an empty Redis; wall seconds and CPU by party."""
    h.flush()
    meter = CpuMeter({"redis": [h.redis_pid()]}).start()
    t0 = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t0
    cpu = meter.stop()
    return {
        "seconds": seconds,
        "producer_cpu_s": cpu["producer_cpu_s"],
        "redis_cpu_s": cpu["redis_cpu_s"],
        "other_procs_cpu_s": cpu["other_procs_cpu_s"],
    }


def _warm_up(h: Harness) -> None:
    for i in range(WARMUP):
        h.bare.noop.apply_async((_payload(i),))
        h.ct.noop.trigger(_payload(i))
    h.ct.noop.batch_trigger([{"payload": _payload(i)} for i in range(100)])
    with h.bare.app.producer_or_acquire() as producer, producer.batch(100):
        for i in range(100):
            h.bare.noop.apply_async((_payload(i),), producer=producer)
    h.flush()


def _side(samples: list[dict[str, float]], n: int) -> dict[str, Any]:
    secs = [s["seconds"] for s in samples]
    med = statistics.median(secs)
    return {
        "seconds": spread(secs),
        "per_s": round(n / med, 1),
        "us_per_call": round(med / n * 1e6, 1),
        "producer_cpu_us_per_call": round(
            statistics.median(s["producer_cpu_s"] for s in samples) / n * 1e6, 1
        ),
        "redis_cpu_us_per_call": round(
            statistics.median(s["redis_cpu_s"] for s in samples) / n * 1e6, 1
        ),
        "other_procs_cpu_s": round(sum(s["other_procs_cpu_s"] for s in samples), 2),
    }


def _ratio(faster_is: list[float], base: list[float]) -> dict[str, float]:
    """Per-repetition ``base_time / side_time`` (higher = the side is faster), summarised."""
    return spread([b / s for s, b in zip(faster_is, base, strict=True)])


def trigger_throughput(h: Harness, n: int, reps: int) -> dict[str, Any]:
    """Case 1: N single triggers against N bare apply_async, no worker."""
    _warm_up(h)
    bare: list[dict[str, float]] = []
    ct: list[dict[str, float]] = []
    payloads = [_payload(i) for i in range(n)]

    def run_bare() -> None:
        for p in payloads:
            h.bare.noop.apply_async((p,))

    def run_ct() -> None:
        for p in payloads:
            h.ct.noop.trigger(p)

    for rep in range(reps):
        order = [(bare, run_bare), (ct, run_ct)]
        for box, fn in order if rep % 2 == 0 else order[::-1]:
            box.append(_timed(h, fn))
        log(
            f"  trigger rep {rep + 1}/{reps}: bare {n / bare[-1]['seconds']:.0f}/s, "
            f"ct {n / ct[-1]['seconds']:.0f}/s"
        )
    ratio = _ratio([s["seconds"] for s in ct], [s["seconds"] for s in bare])
    return {
        "params": {"n": n, "reps": reps, "warmup": WARMUP, "worker": None, "payload": _payload(0)},
        "bare": {"what": "noop.apply_async((payload,)) x N, result backend on", **_side(bare, n)},
        "ct": {
            "what": "noop.trigger(payload) x N (secret key set; handle JWTs are signed "
            "lazily, on read)",
            **_side(ct, n),
        },
        "ratio": ratio["median"],
        "ratio_spread": ratio,
        "ratio_definition": "ct calls/s / bare calls/s (= bare time / ct time); 1.0 = parity",
    }


def batch_trigger(h: Harness, n: int, reps: int) -> dict[str, Any]:
    """Case 2: one batch_trigger of n items against n bare apply_async (3 bare variants)."""
    _warm_up(h)
    payloads = [_payload(i) for i in range(n)]
    items = [{"payload": p} for p in payloads]
    samples: dict[str, list[dict[str, float]]] = {
        "bare_loop": [],
        "bare_shared_producer": [],
        "bare_pipelined": [],
        "ct_batch": [],
    }

    def bare_loop() -> None:
        for p in payloads:
            h.bare.noop.apply_async((p,))

    def bare_shared() -> None:
        with h.bare.app.producer_or_acquire() as producer:
            for p in payloads:
                h.bare.noop.apply_async((p,), producer=producer)

    def bare_pipelined() -> None:
        with h.bare.app.producer_or_acquire() as producer, producer.batch(n):
            for p in payloads:
                h.bare.noop.apply_async((p,), producer=producer)

    def ct_batch() -> None:
        h.ct.noop.batch_trigger(items)

    fns = {
        "bare_loop": bare_loop,
        "bare_shared_producer": bare_shared,
        "bare_pipelined": bare_pipelined,
        "ct_batch": ct_batch,
    }
    names = list(fns)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            samples[name].append(_timed(h, fns[name]))
        took = ", ".join(f"{k} {v[-1]['seconds'] * 1000:.0f} ms" for k, v in samples.items())
        log(f"  batch rep {rep + 1}/{reps}: {took}")
    ct_secs = [s["seconds"] for s in samples["ct_batch"]]
    ratios = {
        f"vs_{k}": _ratio(ct_secs, [s["seconds"] for s in v])
        for k, v in samples.items()
        if k != "ct_batch"
    }
    return {
        "params": {"items": n, "reps": reps, "warmup": WARMUP, "worker": None},
        "bare": {
            "loop": {
                "what": f"{n} x noop.apply_async((payload,))",
                **_side(samples["bare_loop"], n),
            },
            "shared_producer": {
                "what": "same, inside one app.producer_or_acquire()",
                **_side(samples["bare_shared_producer"], n),
            },
            "pipelined": {
                "what": f"same, inside kombu Producer.batch({n}) (pipelined LPUSH)",
                **_side(samples["bare_pipelined"], n),
            },
        },
        "ct": {"what": f"noop.batch_trigger([{n} items])", **_side(samples["ct_batch"], n)},
        "ratio": ratios["vs_bare_loop"]["median"],
        "ratio_spread": ratios["vs_bare_loop"],
        "ratios_vs_each_bare_variant": ratios,
        "goal": {
            "speedup_vs_bare_loop_at_least": 5.0,
            "met": ratios["vs_bare_loop"]["median"] >= 5.0,
        },
        "ratio_definition": "bare time / ct batch time (speed-up); goal >= 5 vs bare loop",
    }
