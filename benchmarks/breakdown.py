"""Where celery-trigger's extra time goes: per-call µs on the trigger path and the worker path.

    python -m benchmarks.breakdown [--n 2000] [--reps 3] [--runs 3000] [--no-cprofile]

Trigger path (this process, no worker): N ``noop.trigger`` and N bare ``apply_async``,
unprobed (the true per-call time) and with timing wrappers around each step (validation,
JSON, the create-run Lua script, publish with its SUBSCRIBE and kombu parts, the JWT), in
alternating repetitions; medians are reported, as wall µs and as this thread's CPU µs (the
difference is mostly waiting for Redis). Then one probed ``batch_trigger`` of 1,000 items,
and a cProfile of the single-trigger loop.

Worker path: a ``prefork -c 2`` worker stops consuming, ``--runs`` runs are queued, then it
consumes again (only the worker and Redis are busy while it drains). Its pool children wrap
the engine's steps (claim, finish, watchdog, context, hooks and user function, Celery result
writes) and the whole traced task. The same for bare workers (defaults, safe settings). With
cProfile, one more ct pass profiles the pool children.

Prints JSON on stdout and writes ``results/breakdown-<timestamp>.json`` (+ cProfile text).
"""

from __future__ import annotations

import argparse
import cProfile
import glob
import io
import json
import os
import pstats
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._harness import BARE_QUEUES, CT_QUEUE, Harness
from benchmarks._infra import RESULTS_DIR, CpuMeter, Worker, log, machine_info, versions
from benchmarks.probe import Probe, install_bare_publish_probe, install_trigger_probe

Stats = dict[str, dict[str, float]]


def _loop_s(fn: Callable[[int], Any], n: int) -> float:
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return time.perf_counter() - t


def _top(*sources: Any, limit: int, sort: str) -> tuple[list[dict[str, Any]], str]:
    """Top functions of a cProfile.Profile or of .pstats files, as rows and as text."""
    stream = io.StringIO()
    st = pstats.Stats(*sources, stream=stream)
    st.sort_stats(sort).print_stats(limit)
    key = 3 if sort == "cumulative" else 2
    rows = []
    for (file, line, func), (_cc, nc, tt, ct, _callers) in sorted(
        st.stats.items(), key=lambda kv: kv[1][key], reverse=True
    )[:limit]:  # type: ignore[attr-defined]
        where = os.path.relpath(file) if file.startswith("/") else file
        rows.append(
            {
                "function": f"{where}:{line}({func})",
                "calls": nc,
                "tottime_s": round(tt, 4),
                "cumtime_s": round(ct, 4),
            }
        )
    return rows, stream.getvalue()


def _median_stats(samples: list[Stats]) -> Stats:
    names = set().union(*samples)
    return {
        name: {
            f: statistics.median(s.get(name, {f: 0.0})[f] for s in samples)
            for f in ("calls", "wall_s", "cpu_s")
        }
        for name in names
    }


def _cell(stats: Stats, name: str, per: int) -> dict[str, float]:
    s = stats.get(name, {"wall_s": 0.0, "cpu_s": 0.0})
    return {
        "wall_us": round(s["wall_s"] / per * 1e6, 1),
        "cpu_us": round(s["cpu_s"] / per * 1e6, 1),
    }


def _minus(a: dict[str, float], *others: dict[str, float]) -> dict[str, float]:
    return {k: round(a[k] - sum(o[k] for o in others), 1) for k in a}


def _ct_table(st: Stats, per: int, total: dict[str, float]) -> dict[str, Any]:
    prepare = _cell(st, "prepare (validation, incl. JSON)", per)
    dumps = _cell(st, "json dumps", per)
    create = _cell(st, "store.create_runs (Lua script)", per)
    plan = _cell(st, "direct enqueue: plan (build message)", per)
    as_task = _cell(st, "celery amqp.as_task_v2 (message)", per)
    published = _cell(st, "direct enqueue: after_task_publish", per)
    publish = _cell(st, "publish (incl. subscribe + kombu)", per)
    sub = _cell(st, "ct: backend.on_task_call (SUBSCRIBE)", per)
    kombu = _cell(st, "kombu Producer.publish", per)
    jwt = _cell(st, "JWT run_handle_token", per)
    batch = _cell(st, "store.put_batch", per)
    batch_jwt = _cell(st, "JWT batch_handle_token", per)
    return {
        "total (probed)": total,
        "validation: prepare() minus JSON": _minus(prepare, dumps),
        "json dumps (payload, tags, retry policy)": dumps,
        "direct enqueue: celery amqp.as_task_v2 (message)": as_task,
        "direct enqueue: rest of plan (envelope JSON, base64, signal)": _minus(plan, as_task),
        "redis: create_run Lua script(s) (record + LPUSH of the message)": create,
        "direct enqueue: after_task_publish signal": published,
        "send_task fallback: result SUBSCRIBE": sub,
        "send_task fallback: kombu Producer.publish": kombu,
        "send_task fallback: rest of send_task": _minus(publish, sub, kombu),
        "jwt: handle token (lazy: only if read)": jwt if jwt["wall_us"] else batch_jwt,
        "store.put_batch": batch,
        "other: trigger()/create_and_publish glue, RunHandle": _minus(
            total, prepare, plan, create, published, publish, jwt, batch, batch_jwt
        ),
        "calls_per_item": {k: round(v["calls"] / per, 3) for k, v in st.items() if v["calls"]},
    }


def trigger_path(h: Harness, n: int, reps: int, profile: bool) -> dict[str, Any]:
    def bare(i: int) -> None:
        h.bare.noop.apply_async(({"i": i},))

    def ct(i: int) -> None:
        h.ct.noop.trigger({"i": i})

    _loop_s(bare, 300), _loop_s(ct, 300)
    probe = Probe()
    plain: dict[str, list[float]] = {"bare": [], "ct": []}
    probed: dict[str, list[float]] = {"bare": [], "ct": []}
    probed_cpu: dict[str, list[float]] = {"bare": [], "ct": []}
    stats: dict[str, list[Stats]] = {"bare": [], "ct": []}
    for _ in range(reps):
        for side, fn in (("bare", bare), ("ct", ct)):
            h.flush()
            plain[side].append(_loop_s(fn, n))
        install_trigger_probe(probe, h.ct.app, h.ct.engine)
        install_bare_publish_probe(probe, h.bare.app)
        for side, fn in (("ct", ct), ("bare", bare)):
            h.flush()
            probe.zero()
            c = time.thread_time()
            probed[side].append(_loop_s(fn, n))
            probed_cpu[side].append(time.thread_time() - c)
            stats[side].append(probe.snapshot())
        probe.restore()
    h.flush()
    install_trigger_probe(probe, h.ct.app, h.ct.engine)
    install_bare_publish_probe(probe, h.bare.app)
    probe.zero()
    items = [{"payload": {"i": i}} for i in range(1000)]
    t, c = time.perf_counter(), time.thread_time()
    h.ct.noop.batch_trigger(items)
    batch_total = {
        "wall_us": round((time.perf_counter() - t) / 1000 * 1e6, 1),
        "cpu_us": round((time.thread_time() - c) / 1000 * 1e6, 1),
    }
    batch_stats = probe.snapshot()
    probe.restore()
    h.flush()

    def total(side: str) -> dict[str, float]:
        return {
            "wall_us": round(statistics.median(probed[side]) / n * 1e6, 1),
            "cpu_us": round(statistics.median(probed_cpu[side]) / n * 1e6, 1),
        }

    ct_st, bare_st = _median_stats(stats["ct"]), _median_stats(stats["bare"])
    b_sub = _cell(bare_st, "bare: backend.on_task_call (SUBSCRIBE)", n)
    b_kombu = _cell(bare_st, "kombu Producer.publish", n)
    out: dict[str, Any] = {
        "n": n,
        "reps": reps,
        "unprobed_wall_us_per_call": {
            side: [round(s / n * 1e6, 1) for s in v] for side, v in plain.items()
        },
        "ct_us_per_call": _ct_table(ct_st, n, total("ct")),
        "bare_us_per_call": {
            "total (probed)": total("bare"),
            "result SUBSCRIBE (backend.on_task_call)": b_sub,
            "kombu Producer.publish (LPUSH)": b_kombu,
            "rest of apply_async/send_task": _minus(total("bare"), b_sub, b_kombu),
        },
        "batch_1000_us_per_item": _ct_table(batch_stats, 1000, batch_total),
        "note": "wall includes waiting for Redis replies; cpu is this thread's CPU time. "
        "'probed' totals include ~1 us of wrapper cost per wrapped call",
    }
    if profile:
        h.flush()
        profiler = cProfile.Profile()
        profiler.enable()
        _loop_s(ct, n)
        profiler.disable()
        h.flush()
        out["cprofile_trigger_top_tottime"], out["_cprofile_text"] = _top(
            profiler, limit=30, sort="tottime"
        )
    return out


def _drain(h: Harness, w: Worker, kind: str, runs: int) -> tuple[list[str], float, Any]:
    """Queue ``runs`` no-ops while ``w`` is not consuming, then let it drain them."""
    queue = CT_QUEUE if kind == "ct" else BARE_QUEUES[kind.removeprefix("bare_")]
    app = h.ct.app if kind == "ct" else h.bare.app
    app.control.cancel_consumer(queue, destination=[w.name], reply=True, timeout=5)
    if kind == "ct":
        ids: list[str] = []
        for start in range(0, runs, 1000):
            ids.extend(h.ct.noop.batch_trigger([{"payload": None}] * min(1000, runs - start)).runs)
    else:
        with h.bare.app.producer_or_acquire() as producer, producer.batch(1000):
            ids = [
                h.bare.noop.apply_async((None,), queue=queue, producer=producer).id
                for _ in range(runs)
            ]
    pids = w.pids()
    meter = CpuMeter(
        {"worker_main": pids[:1], "worker_pool": pids[1:], "redis": [h.redis_pid()]}
    ).start()
    t0 = time.perf_counter()
    app.control.add_consumer(queue, destination=[w.name], reply=True, timeout=5)
    if kind == "ct":
        h.ct_completion(ids, 300)
    else:
        h.bare_completion(ids, 300)
    return ids, time.perf_counter() - t0, meter.stop()


def _merge(paths: list[str]) -> Stats:
    merged: Stats = {}
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        for name, s in data["stats"].items():
            box = merged.setdefault(name, {"calls": 0, "wall_s": 0.0, "cpu_s": 0.0})
            for field in box:
                box[field] += s[field]
    return merged


def worker_pass(h: Harness, kind: str, runs: int, cprofile: bool) -> dict[str, Any]:
    probe_dir = tempfile.mkdtemp(prefix=f"bench-probe-{kind}-")
    os.environ["BENCH_CPROFILE"] = "1" if cprofile else "0"
    h.flush()
    worker = (
        h.ct_worker(probe=probe_dir)
        if kind == "ct"
        else h.bare_worker(kind.removeprefix("bare_"), probe=probe_dir)
    )
    try:
        with worker as w:
            _ids, wall, cpu = _drain(h, w, kind, runs)
    finally:
        os.environ.pop("BENCH_CPROFILE", None)
    merged = _merge(glob.glob(os.path.join(probe_dir, "[!m]*.json")))
    main = _merge(glob.glob(os.path.join(probe_dir, "main-*.json")))
    tasks = max(int(merged.get("child: whole task (trace)", {"calls": 0})["calls"]), 1)
    out: dict[str, Any] = {
        "runs": runs,
        "tasks_traced_in_children": tasks,
        "drain_wall_s": round(wall, 2),
        "drain_per_s": round(runs / wall, 1),
        **{
            f"{k.removesuffix('_cpu_s')}_cpu_us_per_task": round(v / runs * 1e6, 1)
            for k, v in cpu.items()
            if k.endswith("_cpu_s") and k != "other_procs_cpu_s"
        },
        "other_procs_cpu_s": cpu["other_procs_cpu_s"],
        "child_steps_us_per_task": {
            name: {**_cell(merged, name, tasks), "calls_per_task": round(s["calls"] / tasks, 2)}
            for name, s in sorted(merged.items())
        },
        "main_process_steps_us_per_task": {
            name: {**_cell(main, name, runs), "calls": int(s["calls"])}
            for name, s in sorted(main.items())
        },
    }
    files = glob.glob(os.path.join(probe_dir, "*.pstats"))
    if files:
        out["cprofile_child_top_cumulative"], out["_cprofile_text"] = _top(
            *files, limit=40, sort="cumulative"
        )
    shutil.rmtree(probe_dir, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.breakdown")
    p.add_argument("--n", type=int, default=2000, help="trigger-path calls per side and rep")
    p.add_argument("--reps", type=int, default=3, help="trigger-path repetitions")
    p.add_argument("--runs", type=int, default=3000, help="worker-path runs per worker")
    p.add_argument("--no-cprofile", action="store_true")
    args = p.parse_args(argv)
    started = datetime.now(timezone.utc)
    doc: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": versions(),
    }
    texts: dict[str, str] = {}
    meter = CpuMeter({}).start()
    with Harness() as h:
        log("trigger path ...")
        doc["trigger_path"] = trigger_path(h, args.n, args.reps, not args.no_cprofile)
        texts["trigger"] = doc["trigger_path"].pop("_cprofile_text", "")
        doc["worker_path"] = {}
        for kind in ("bare_default", "bare_safe", "ct"):
            log(f"worker path {kind} ...")
            doc["worker_path"][kind] = worker_pass(h, kind, args.runs, False)
        if not args.no_cprofile:
            log("worker path ct under cProfile ...")
            prof = worker_pass(h, "ct", args.runs, True)
            doc["worker_path"]["ct_cprofile"] = {
                "note": "pool children under cProfile: times inflated, read the shape",
                "top_cumulative": prof.get("cprofile_child_top_cumulative"),
            }
            texts["worker"] = prof.get("_cprofile_text", "")
    doc["machine_other_procs_cpu_s"] = meter.stop()["other_procs_cpu_s"]
    text = json.dumps(doc, indent=2)
    print(text)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    os.makedirs(RESULTS_DIR, exist_ok=True)
    with open(os.path.join(RESULTS_DIR, f"breakdown-{stamp}.json"), "w") as f:
        f.write(text + "\n")
    for name, body in texts.items():
        if body:
            path = os.path.join(RESULTS_DIR, f"breakdown-{stamp}-{name}-cprofile.txt")
            with open(path, "w") as f:
                f.write(body)
    log(f"wrote {RESULTS_DIR}/breakdown-{stamp}*")
    return doc


if __name__ == "__main__":
    main()
