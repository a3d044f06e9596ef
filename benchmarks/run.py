"""The one benchmark command: celery-trigger side by side with bare Celery, JSON out.

    python -m benchmarks.run                  # every case, full size (about 4-5 min, 2 cores)
    python -m benchmarks.run --quick          # every case, small sizes (about 1 min)
    python -m benchmarks.run --only latency   # one case (or a comma list)

Every invocation starts one private redis-server (free port, no persistence), runs both
sides of each case against it, stops it, prints one JSON document on stdout and writes it to
``benchmarks/results/<UTC timestamp>.json``. Progress goes to stderr. See README.md for what
each case measures and how to read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from typing import Any

if __package__ in (None, ""):  # ``python benchmarks/run.py``
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._harness import Harness
from benchmarks._infra import RESULTS_DIR, CpuMeter, log, machine_info, versions

CASES = (
    "trigger",
    "batch",
    "e2e",
    "latency",
    "meta",
    "queues",
    "durable",
    "realtime",
    "obs",
    "idle",
)
FULL = {
    "trigger_n": 3000,
    "trigger_reps": 3,
    "batch_items": 1000,
    "batch_reps": 7,
    "e2e_n": 10_000,
    "e2e_reps": 2,
    "latency_n": 500,
    "latency_warmup": 50,
    "latency_block": 25,
}
QUICK = {
    "trigger_n": 500,
    "trigger_reps": 2,
    "batch_items": 200,
    "batch_reps": 3,
    "e2e_n": 1000,
    "e2e_reps": 1,
    "latency_n": 100,
    "latency_warmup": 20,
    "latency_block": 20,
}
#: Sizes of the ``meta`` case (benchmarks/cases_meta.py).
FULL.update(meta_trigger_n=2000, meta_trigger_reps=3, meta_runs=40, meta_increments=1000)
QUICK.update(meta_trigger_n=300, meta_trigger_reps=2, meta_runs=10, meta_increments=1000)
#: Sizes of the ``queues`` case (benchmarks/cases_queues.py).
FULL.update(queues_n=5000, queues_reps=2)
QUICK.update(queues_n=1000, queues_reps=1)
#: Sizes of the ``durable`` case (benchmarks/cases_durable.py).
FULL.update(
    durable_fan_small=100,
    durable_fan_large=1000,
    durable_fan_reps=3,
    durable_resume_n=200,
    durable_timer_n=1000,
    durable_timer_rate=50,
    durable_timer_rate_loaded=100,
    durable_park_n=10_000,
)
QUICK.update(
    durable_fan_small=20,
    durable_fan_large=200,
    durable_fan_reps=1,
    durable_resume_n=40,
    durable_timer_n=100,
    durable_timer_rate=50,
    durable_timer_rate_loaded=0,
    durable_park_n=1000,
)
#: Sizes of the ``realtime`` case (benchmarks/cases_realtime.py).
FULL.update(
    rt_updates=300,
    rt_warmup=20,
    rt_slow_poll_updates=30,
    rt_k_small=100,
    rt_k_medium=1000,
    rt_k_large=3000,
    rt_rounds=2,
)
QUICK.update(
    rt_updates=60,
    rt_warmup=10,
    rt_slow_poll_updates=0,
    rt_k_small=50,
    rt_k_medium=200,
    rt_k_large=0,
    rt_rounds=2,
)
#: Sizes of the ``obs`` case (benchmarks/cases_obs.py).
FULL.update(obs_runs=60, obs_calls=1000, obs_sessions=2)
QUICK.update(obs_runs=20, obs_calls=1000, obs_sessions=1)
#: Sizes of the ``idle`` case (benchmarks/cases_idle.py).
FULL.update(idle_window_s=20)
QUICK.update(idle_window_s=5)
#: Above this share of the machine's CPU used by other processes, a case's figures are suspect.
CONTENTION_WARN_SHARE = 0.05


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    p.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    p.add_argument(
        "--only",
        default=",".join(CASES),
        help=f"comma list of cases to run, from {', '.join(CASES)}",
    )
    for key in FULL:
        p.add_argument(
            f"--{key.replace('_', '-')}",
            type=int,
            default=None,
            dest=key,
            help=f"override (full {FULL[key]}, quick {QUICK[key]})",
        )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="before each case (and each e2e run) wait up to this many seconds "
        "for other processes to use < 0.3 CPUs (full 90, quick 5; 0 = off)",
    )
    p.add_argument(
        "--ct-store-db",
        type=int,
        default=0,
        help="Redis DB of ct's run store (0 = the broker's, where triggers push "
        "their message from the create script; e.g. 2 measures the "
        "send_task publish path instead)",
    )
    p.add_argument("--out", default=None, help="JSON path (default results/<timestamp>.json)")
    p.add_argument("--no-save", action="store_true", help="print only, write no file")
    args = p.parse_args(argv)
    unknown = set(args.only.split(",")) - set(CASES)
    if unknown:
        p.error(f"unknown case(s): {', '.join(sorted(unknown))}")
    return args


def run_case(h: Harness, name: str, size: dict[str, int]) -> dict[str, Any]:
    from benchmarks import cases_producer, cases_worker

    if name == "trigger":
        return cases_producer.trigger_throughput(h, size["trigger_n"], size["trigger_reps"])
    if name == "batch":
        return cases_producer.batch_trigger(h, size["batch_items"], size["batch_reps"])
    if name == "queues":
        from benchmarks import cases_queues

        return cases_queues.queues(h, size["queues_n"], size["queues_reps"])
    if name == "meta":
        from benchmarks import cases_meta

        return cases_meta.meta(h, size)
    if name == "durable":
        from benchmarks import cases_durable

        return cases_durable.durable(h, size)
    if name == "obs":
        from benchmarks import cases_obs

        return cases_obs.obs(h, size)
    if name == "realtime":
        from benchmarks import cases_realtime

        return cases_realtime.realtime(h, size)
    if name == "idle":
        from benchmarks import cases_idle

        return cases_idle.idle(h, size["idle_window_s"])
    if name == "e2e":
        return cases_worker.e2e_throughput(h, size["e2e_n"], size["e2e_reps"])
    return cases_worker.latency(h, size["latency_n"], size["latency_warmup"], size["latency_block"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    size = dict(QUICK if args.quick else FULL)
    size.update({k: getattr(args, k) for k in FULL if getattr(args, k) is not None})
    wanted = [c for c in CASES if c in args.only.split(",")]
    started = datetime.now(timezone.utc)
    doc: dict[str, Any] = {
        "benchmark": "celery-trigger vs bare Celery, same private Redis, same run",
        "started_at": started.isoformat(timespec="seconds"),
        "command": " ".join(
            ["python -m benchmarks.run", *(argv if argv is not None else sys.argv[1:])]
        ),
        "mode": "quick" if args.quick else "full",
        "sizes": size,
        "machine": machine_info(),
        "versions": versions(),
        "cases": {},
    }
    t0 = time.perf_counter()
    quiet_wait = args.quiet_wait if args.quiet_wait is not None else (5 if args.quick else 90)
    with Harness(quiet_wait, args.ct_store_db) as h:
        doc["redis"] = {
            "url": h.redis.base,
            "flags": "--save '' --appendonly no",
            "broker_db": 0,
            "backend_db": 1,
            "ct_store_db": args.ct_store_db,
            "ct_key_prefix": h.keys.prefix,
            "ct_direct_enqueue": bool(getattr(h.ct.engine.broker, "direct", False)),
        }
        for name in wanted:
            log(f"case {name} ...")
            quiet = h.settle(name)
            meter = CpuMeter({}).start()
            case_t0 = time.perf_counter()
            result = run_case(h, name, size)
            contention = meter.stop()
            result["case_wall_s"] = round(time.perf_counter() - case_t0, 1)
            result["machine_other_procs_cpu_s"] = contention["other_procs_cpu_s"]
            result["quiet_before"] = quiet
            budget = contention["wall_s"] * (os.cpu_count() or 1) * CONTENTION_WARN_SHARE
            if contention["other_procs_cpu_s"] > max(1.0, budget):
                result["warning"] = (
                    f"other processes used {contention['other_procs_cpu_s']}"
                    " CPU-s during this case: figures may be skewed"
                )
            doc["cases"][name] = result
            log(f"case {name}: ratio {result['ratio']} ({result['case_wall_s']} s)")
    doc["duration_s"] = round(time.perf_counter() - t0, 1)
    doc["summary"] = {
        name: {"ratio": c["ratio"], "definition": c["ratio_definition"]}
        for name, c in doc["cases"].items()
    }
    text = json.dumps(doc, indent=2, sort_keys=False)
    print(text)
    if not args.no_save:
        path = args.out or os.path.join(RESULTS_DIR, started.strftime("%Y%m%dT%H%M%SZ") + ".json")
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            f.write(text + "\n")
        log(f"wrote {path}")
    return doc


if __name__ == "__main__":
    main()
