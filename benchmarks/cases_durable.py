"""Case ``durable``: durable execution (parked waits) against the nearest bare-Celery canvas.

Three workers are up for the whole case, each a ``celery worker -P prefork -c 2`` subprocess
on its own queue, idle while another is measured: celery-trigger (``benchmarks.app_durable``,
``trigger_wait_threshold`` lowered to 0.5 s so one-second waits park), bare Celery with the
settings ``setup()`` applies (``safe``) and bare Celery with its defaults. Four parts:

1. ``fan_out``: a ct parent calling ``fan_child.batch_trigger_and_wait`` on N items, against
   ``chord(group(fan_child.s(i) ...), fan_join.s())``, for N = 100 and 1,000. Time runs from
   the trigger / ``apply_async`` (taken in this process) until the parent / callback is final
   (the parent's ``finished``; the callback's ``date_done``). Sides alternate per repetition.
2. ``resume``: sequential ``trigger_and_wait`` of a trivial child. The resume latency is the
   parent's ``resumed`` stamp (``trigger_and_wait`` returned) minus the child's ``child_end``
   stamp (its last statement): both written by the tasks themselves. The bare equivalent is
   a chain child -> callback (callback's first statement minus the child's last). The whole
   round trip (trigger until the parent is COMPLETED, polled every 0.5 ms; the chain's
   callback result polled the same way) is given for context.
3. ``timers``: N runs of ``ct.wait.for_(seconds=1)``, triggered at a steady rate (50/s: the
   worker then runs 100 executions/s, under half of what it can), and again at a higher rate
   (``timers_loaded``, 100/s) to show how lateness grows with the worker's load. Lateness =
   the resumed stamp minus the wait's target (the ``due`` of its journal entry, in ms).
   Default ``trigger_timer_poll_interval`` (0.05 s). Measured first, on a fresh worker.
4. ``memory``: ``INFO memory`` ``used_memory`` before and after N runs park in
   ``ct.wait.for_(hours=1)``, per run; then every run is cancelled (``ct.runs.cancel``) and
   the memory measured again. A breakdown gives the keys of one parked run and the growth of
   the shared structures (``MEMORY USAGE ... SAMPLES 0``).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from ._harness import BARE_QUEUES, CT_QUEUE, FINAL, Harness
from ._infra import CpuMeter, Worker, log, spread, summarize_ms, wait_until

WAIT_THRESHOLD_S = 0.5
POLL_S = 0.0005
TIMEOUT_S = 120.0
BARE = ("bare_safe", "bare_default")
TIMER_GOAL_P99_MS = 100.0


def _durable_worker(h: Harness) -> Worker:
    def ready(w: Worker) -> None:
        ids = [h.ct.noop.trigger(None).id for _ in range(8)]
        deadline = time.monotonic() + 40
        while h.ct_final_count(ids) < len(ids):
            if not w.alive() or time.monotonic() > deadline:
                raise SystemExit(f"durable worker did not warm up; see {w.log_path}")
            time.sleep(0.01)

    env = {"BENCH_CT_WAIT_THRESHOLD": str(WAIT_THRESHOLD_S)}
    return Worker("benchmarks.app_durable", CT_QUEUE, env, tag="ct-durable", ready=ready)


def _ct_final(h: Harness, run_id: str, interval: float) -> dict[str, str]:
    key = h.keys.run(run_id)

    def final() -> dict[str, str] | None:
        status, finished = h.r_store.hmget(key, "status", "finished")
        if status is not None and status.decode() in FINAL:
            return {"status": status.decode(), "finished": finished.decode()}
        return None

    return wait_until(final, TIMEOUT_S, interval, what=f"run {run_id} final")  # type: ignore


def _bare_done(h: Harness, task_id: str, interval: float) -> dict[str, Any]:
    key = f"celery-task-meta-{task_id}"

    def done() -> dict[str, Any] | None:
        raw = h.r_backend.get(key)
        meta = json.loads(raw) if raw else None
        return meta if meta and meta["status"] in ("SUCCESS", "FAILURE") else None

    return wait_until(done, TIMEOUT_S, interval, what=f"result {task_id}")  # type: ignore


def _stamps(h: Harness, key: str) -> dict[str, float]:
    return {k.decode(): float(v) for k, v in h.r.hgetall(key).items()}


# 1. fan-out / fan-in ----------------------------------------------------------------------
def _fan_once(h: Harness, variant: str, n: int, tag: str, pids: list[int]) -> dict[str, Any]:
    from celery import chord, group

    from . import app_durable as d

    key = f"benchd:fan:{variant}:{n}:{tag}"
    meter = CpuMeter({"worker": pids, "redis": [h.redis_pid()]}).start()
    if variant == "ct":
        t0 = time.time()
        run_id = d.fan_parent.trigger({"n": n, "key": key}).id
        rec = _ct_final(h, run_id, 0.005)
        if rec["status"] != "COMPLETED":
            raise RuntimeError(f"fan-out parent {run_id} ended {rec['status']}")
        end = int(rec["finished"]) / 1000.0
    else:
        q = BARE_QUEUES[variant.removeprefix("bare_")]
        sig = chord(
            group(h.bare.fan_child.s(i).set(queue=q) for i in range(n)),
            h.bare.fan_join.s(key).set(queue=q),
        )
        t0 = time.time()
        meta = _bare_done(h, sig.apply_async().id, 0.005)
        end = datetime.fromisoformat(meta["date_done"]).timestamp()
    cpu = meter.stop()
    stamps = _stamps(h, key)
    if int(stamps.get("total", -1)) != n * (n - 1) // 2:
        raise RuntimeError(f"{variant} fan-out of {n}: wrong total {stamps.get('total')}")
    return {
        "s": round(end - t0, 4),
        "body_end_s": round(stamps["end"] - t0, 4),
        "worker_cpu_s": cpu["worker_cpu_s"],
        "redis_cpu_s": cpu["redis_cpu_s"],
        "producer_cpu_s": cpu["producer_cpu_s"],
    }


def fan_out(h: Harness, sizes: list[int], reps: int, pids: dict[str, list[int]]) -> dict[str, Any]:
    variants = ["ct", *BARE]
    for v in variants:  # warm-up: code paths and scripts loaded, pool children busy once
        _fan_once(h, v, 10, "warm", pids[v])
    out: dict[str, Any] = {}
    for n in sizes:
        samples: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
        for rep in range(reps):
            for v in variants if rep % 2 == 0 else variants[::-1]:
                samples[v].append(_fan_once(h, v, n, str(rep), pids[v]))
        secs = {v: [s["s"] for s in samples[v]] for v in variants}
        out[str(n)] = {
            **{v: {"seconds": spread(secs[v]), "runs": samples[v]} for v in variants},
            "ratio_vs_bare_safe": spread(
                [b / c for b, c in zip(secs["bare_safe"], secs["ct"], strict=True)]
            ),
            "ratio_vs_bare_default": spread(
                [b / c for b, c in zip(secs["bare_default"], secs["ct"], strict=True)]
            ),
        }
        log(
            f"  fan-out {n:5d}: "
            + ", ".join(f"{v} {out[str(n)][v]['seconds']['median']:.3f}s" for v in variants)
        )
    return out


# 2. resume latency ------------------------------------------------------------------------
def _resume_once(h: Harness, variant: str, key: str) -> float:
    from celery import chain

    from . import app_durable as d

    t = time.perf_counter()
    if variant == "ct":
        run_id = d.resume_parent.trigger({"key": key}).id
        status = _ct_final(h, run_id, POLL_S)["status"]
        if status != "COMPLETED":
            raise RuntimeError(f"resume parent {run_id} ended {status}")
    else:
        q = BARE_QUEUES[variant.removeprefix("bare_")]
        sig = chain(h.bare.chain_child.s(key).set(queue=q), h.bare.chain_callback.s().set(queue=q))
        _bare_done(h, sig.apply_async().id, POLL_S)
    return time.perf_counter() - t


def resume(h: Harness, n: int, warmup: int, block: int = 25) -> dict[str, Any]:
    variants = ["ct", *BARE]
    for v in variants:
        for i in range(warmup):
            _resume_once(h, v, f"benchd:resume:{v}:warm{i}")
    rt: dict[str, list[float]] = {v: [] for v in variants}
    for b in range(0, n, block):
        for v in variants if (b // block) % 2 == 0 else variants[::-1]:
            rt[v].extend(
                _resume_once(h, v, f"benchd:resume:{v}:{i}") for i in range(b, min(b + block, n))
            )
    out: dict[str, Any] = {}
    for v in variants:
        rows = [_stamps(h, f"benchd:resume:{v}:{i}") for i in range(n)]
        out[v] = {
            "resume_latency": summarize_ms([s["resumed"] - s["child_end"] for s in rows]),
            "round_trip": summarize_ms(rt[v]),
        }
        if v == "ct":
            parked = [s for s in rows if s.get("parked")]
            out[v]["not_parked"] = n - len(parked)
            out[v]["child_end_to_resumed_delivery"] = summarize_ms(
                [s["entered"] - s["child_end"] for s in parked]
            )
            out[v]["replay"] = summarize_ms([s["resumed"] - s["entered"] for s in parked])
        log(
            f"  resume {v:12s}: latency p50 {out[v]['resume_latency']['p50_ms']:.2f} ms "
            f"p99 {out[v]['resume_latency']['p99_ms']:.2f} ms; round trip p50 "
            f"{out[v]['round_trip']['p50_ms']:.2f} ms"
        )
    out["what"] = {
        "resume_latency": "ct: parent's trigger_and_wait returned - child's last statement; "
        "bare: chain callback's first statement - child's last statement",
        "round_trip": f"trigger/apply_async until the parent is COMPLETED / the callback's "
        f"result is stored, polled every {POLL_S * 1000} ms",
        "child_end_to_resumed_delivery": "child's last statement -> the parent's resumed "
        "delivery entered the function (child finish, "
        "notify, publish, consume, claim)",
        "replay": "parent entered -> trigger_and_wait returned (replay of the journal)",
    }
    return out


# 3. timer lateness ------------------------------------------------------------------------
def timers(h: Harness, n: int, rate: int, pids: list[int]) -> dict[str, Any]:
    from . import app_durable as d

    key = f"benchd:timer:{rate}"
    meter = CpuMeter({"worker": pids, "redis": [h.redis_pid()]}).start()
    t0 = time.perf_counter()
    ids: list[str] = []
    for i in range(n):
        pause = t0 + i / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        ids.append(d.timer.trigger({"i": i, "seconds": 1.0, "key": key}).id)
    wait_until(
        lambda: h.r.hlen(key + ":resumed") >= n, TIMEOUT_S, 0.05, what=f"all {n} timer runs resumed"
    )
    cpu = meter.stop()
    resumed = {int(k): float(v) for k, v in h.r.hgetall(key + ":resumed").items()}
    entered = {int(k): float(v) for k, v in h.r.hgetall(key + ":entered").items()}
    pipe = h.r_store.pipeline(transaction=False)
    for run_id in ids:
        pipe.lindex(h.keys.journal(run_id), 0)
    due = [int(json.loads(raw)["due"]) / 1000.0 for raw in pipe.execute()]
    late = [resumed[i] - due[i] for i in range(n)]
    stats = summarize_ms(late)
    log(
        f"  timers at {rate}/s: {n} one-second waits, lateness p50 {stats['p50_ms']:.1f} ms p99 "
        f"{stats['p99_ms']:.1f} ms max {stats['max_ms']:.1f} ms"
    )
    return {
        "lateness": stats,
        "due_to_resumed_delivery": summarize_ms([entered[i] - due[i] for i in range(n)]),
        "replay": summarize_ms([resumed[i] - entered[i] for i in range(n)]),
        "goal": {"p99_ms_below": TIMER_GOAL_P99_MS, "met": stats["p99_ms"] < TIMER_GOAL_P99_MS},
        "trigger_rate_per_s": rate,
        "wall_s": cpu["wall_s"],
        "worker_cpu_share": round(cpu["worker_cpu_s"] / cpu["wall_s"], 3),
        "redis_cpu_share": round(cpu["redis_cpu_s"] / cpu["wall_s"], 3),
        "what": "lateness = the wait's first statement after ct.wait.for_(seconds=1) - the "
        "wait's due time (journal entry, ms: truncated, so lateness reads up to 1 ms "
        "high); due_to_resumed_delivery = due -> the resumed delivery entered the "
        "function (timer poll, wake, publish, consume, claim); replay = the rest",
    }


# 4. memory per parked run -----------------------------------------------------------------
def _used(h: Harness) -> int:
    return int(h.r.info("memory")["used_memory"])


def _shared_usage(h: Harness) -> dict[str, int]:
    """MEMORY USAGE of every key of DB 0 that is not one run's own key."""
    run_prefix = h.keys.run("")
    names = [k for k in h.r_store.scan_iter(count=2000) if not k.decode().startswith(run_prefix)]
    pipe = h.r_store.pipeline(transaction=False)
    for name in names:
        pipe.memory_usage(name, samples=0)
    return {k.decode(): int(v or 0) for k, v in zip(names, pipe.execute(), strict=True)}


def _run_keys_usage(h: Harness, run_id: str) -> dict[str, int]:
    base = h.keys.run(run_id)
    r = h.r_store
    names = [base, *r.scan_iter(match=base + ":*", count=5000)]
    return {
        (k if isinstance(k, str) else k.decode()).replace(run_id, "<id>"): int(
            r.memory_usage(k, samples=0) or 0
        )
        for k in names
        if r.exists(k)
    }


def _field_sizes(h: Harness, run_id: str) -> dict[str, Any]:
    """How many fields one run hash has, their total value bytes and the largest five."""
    record = h.r_store.hgetall(h.keys.run(run_id))
    sizes = sorted(((k.decode(), len(v)) for k, v in record.items()), key=lambda kv: -kv[1])
    return {
        "count": len(sizes),
        "value_bytes": sum(n for _, n in sizes),
        "name_bytes": sum(len(k) for k, _ in sizes),
        "largest": dict(sizes[:5]),
    }


def memory(h: Harness, n: int) -> dict[str, Any]:
    from celery_trigger import runs

    from . import app_durable as d

    time.sleep(0.5)  # let the timer service and the workers settle
    before, shared_before = _used(h), _shared_usage(h)
    t0 = time.perf_counter()
    ids = [d.park.trigger(None).id for _ in range(n)]
    trigger_s = time.perf_counter() - t0
    wait_until(lambda: h.r.llen(CT_QUEUE) == 0, TIMEOUT_S, 0.2, what="park queue drained")

    def all_parked() -> bool:
        return all(s == b"WAITING" for (s,) in h.ct_records(ids, "status"))

    wait_until(all_parked, TIMEOUT_S, 0.2, what=f"all {n} runs WAITING")
    parked_s = time.perf_counter() - t0
    time.sleep(0.5)
    after = _used(h)
    shared_after = _shared_usage(h)
    delta = {k: v - shared_before.get(k, 0) for k, v in shared_after.items()}
    growth = {
        k: round(v / n, 1) for k, v in sorted(delta.items(), key=lambda kv: -kv[1]) if abs(v) >= n
    }  # >= 1 byte per run
    sample = ids[n // 2]
    own = _run_keys_usage(h, sample)
    fields = _field_sizes(h, sample)
    t1 = time.perf_counter()
    for run_id in ids:
        runs.cancel(run_id)
    cancel_s = time.perf_counter() - t1
    statuses = {s.decode() for (s,) in h.ct_records(ids, "status")}
    time.sleep(0.5)
    cleaned = _used(h)
    if statuses != {"CANCELED"}:
        raise RuntimeError(f"after cancelling every parked run, statuses are {statuses}")
    per_run = (after - before) / n
    log(
        f"  memory: {per_run:.0f} B per parked run ({n} parked in {parked_s:.1f} s); "
        f"after cancelling all ({cancel_s:.1f} s): {(cleaned - before) / n:.0f} B per run"
    )
    return {
        "n": n,
        "used_memory_before": before,
        "used_memory_parked": after,
        "used_memory_after_cancel": cleaned,
        "bytes_per_parked_run": round(per_run, 1),
        "bytes_per_run_after_cancel": round((cleaned - before) / n, 1),
        "breakdown_one_parked_run_bytes": own,
        "parked_run_hash_fields": fields,
        "after_cancel_one_run_bytes": _run_keys_usage(h, sample),
        "breakdown_shared_growth_bytes_per_run": growth,
        "timers_left": int(h.r_store.zcard(h.keys.timers())),
        "statuses_after_cancel": sorted(statuses),
        "trigger_s": round(trigger_s, 2),
        "all_parked_s": round(parked_s, 2),
        "cancel_s": round(cancel_s, 2),
        "cancels_per_s": round(n / cancel_s, 1),
        "what": "INFO memory used_memory (whole server, every DB) before triggering, once all "
        "runs are WAITING in wait.for_(hours=1), and after ct.runs.cancel of each; "
        "breakdown: MEMORY USAGE SAMPLES 0 of one parked run's own keys and the growth "
        "of the other keys of DB 0 divided by N",
    }


# the case ---------------------------------------------------------------------------------
@contextlib.contextmanager
def _workers(h: Harness) -> Iterator[dict[str, Worker]]:
    h.flush()
    with contextlib.ExitStack() as stack:
        yield {
            "ct": stack.enter_context(_durable_worker(h)),
            "bare_safe": stack.enter_context(h.bare_worker("safe")),
            "bare_default": stack.enter_context(h.bare_worker("default")),
        }


def durable(h: Harness, size: dict[str, int]) -> dict[str, Any]:
    """The ``durable`` case (see the module docstring)."""
    fan_sizes = [size["durable_fan_small"], size["durable_fan_large"]]
    with _workers(h) as ws:
        pids = {v: w.pids() for v, w in ws.items()}
        # timers first, on a fresh worker: the fallback timers the other parts leave behind
        # (a resume| 5 s after each wake) would fire in the middle of it
        tim = timers(h, size["durable_timer_n"], size["durable_timer_rate"], pids["ct"])
        loaded = size["durable_timer_rate_loaded"]
        tim_loaded = timers(h, size["durable_timer_n"], loaded, pids["ct"]) if loaded else None
        fan = fan_out(h, fan_sizes, size["durable_fan_reps"], pids)
        res = resume(h, size["durable_resume_n"], warmup=10)
        mem = memory(h, size["durable_park_n"])
    large = fan[str(fan_sizes[-1])]
    return {
        "params": {
            "workers": "prefork -c 2 each: ct (trigger_wait_threshold "
            f"{WAIT_THRESHOLD_S} s), bare safe, bare default; all up at once, "
            "each idle on its own queue while another is measured",
            "fan_sizes": fan_sizes,
            "fan_reps": size["durable_fan_reps"],
            "resume_n": size["durable_resume_n"],
            "timer_n": size["durable_timer_n"],
            "timer_rate_per_s": size["durable_timer_rate"],
            "timer_rate_loaded_per_s": loaded,
            "timer_poll_interval_s": h.ct.engine.settings.timer_poll_interval,
            "park_n": size["durable_park_n"],
            "fan_out_end": "ct: parent's finished (ms); bare: callback's date_done; "
            "the start is taken in this process before the trigger / "
            "apply_async (the chord's header is published from here, "
            "ct's children are created by the parent in the worker)",
        },
        "fan_out": fan,
        "resume": res,
        "timers": tim,
        "timers_loaded": tim_loaded,
        "memory": mem,
        "ratio": large["ratio_vs_bare_safe"]["median"],
        "ratios": {
            **{
                f"fan_out_{n}_vs_bare_safe": fan[str(n)]["ratio_vs_bare_safe"]["median"]
                for n in fan_sizes
            },
            **{
                f"fan_out_{n}_vs_bare_default": fan[str(n)]["ratio_vs_bare_default"]["median"]
                for n in fan_sizes
            },
            "resume_latency_p50_vs_bare_safe_chain": round(
                res["bare_safe"]["resume_latency"]["p50_ms"]
                / res["ct"]["resume_latency"]["p50_ms"],
                3,
            ),
            "round_trip_p50_vs_bare_safe_chain": round(
                res["bare_safe"]["round_trip"]["p50_ms"] / res["ct"]["round_trip"]["p50_ms"], 3
            ),
        },
        "goals": {
            "fan_out_not_slower_than_chord": all(
                fan[str(n)]["ratio_vs_bare_safe"]["median"] >= 1.0 for n in fan_sizes
            ),
            "timer_p99_below_100_ms": tim["goal"]["met"],
        },
        "ratio_definition": f"chord time / ct batch_trigger_and_wait time for "
        f"{fan_sizes[-1]} children, against bare Celery with ct's safe "
        "settings (higher is better for ct; goal >= 1); ratios.* give the "
        "other sizes, bare defaults, and chain / trigger_and_wait p50s",
    }
