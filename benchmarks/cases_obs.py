"""Case ``obs``: what observability costs a run. celery-trigger against itself, plus the
stdlib logger a bare-Celery task would use, measured inside the same runs.

1. ``ct.logger.info``: a run making N ``ct.logger.info(msg, {2 properties})`` calls, then N
   stdlib ``logger.info`` calls (Celery's task logger, filtered at the worker's WARNING
   level as ct's stdlib record is), each loop timed inside the run (µs per call). The
   round trip of that run against a no-op run gives the added p50 per call including the
   run log's write at the end of the attempt.
2. OpenTelemetry absent vs installed but unconfigured: the same prefork ``-c 2`` worker
   (``benchmarks.app_obs``) started once with ``benchmarks/hide_otel`` on ``PYTHONPATH``
   (its ``sitecustomize`` makes OpenTelemetry not importable, as when not installed) and
   once normally (importable, no tracer provider set: ct's spans are OpenTelemetry's no-op
   spans; redis-py imports OpenTelemetry at start-up when it is installed). The worker sessions
   alternate (``obs_sessions``, order reversed each time); inside a session no-op and
   logging runs alternate in blocks. Each run reports whether ``opentelemetry`` was loaded
   in its process, so the JSON shows the hiding worked.

Headline ``ratio``: no-op run p50 with OpenTelemetry importable-but-unconfigured ÷ p50 with
it not importable (1.0 = absence costs the same; above 1.0 = a run is cheaper without it).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from typing import Any

from ._harness import CT_QUEUE, Harness
from ._infra import CpuMeter, Worker, log, summarize_ms
from .cases_meta import _roundtrip

HIDE_OTEL = os.path.join(os.path.dirname(os.path.abspath(__file__)), "hide_otel")
VARIANTS: dict[str, dict[str, str]] = {
    "no_otel": {"PYTHONPATH": HIDE_OTEL + os.pathsep + os.environ.get("PYTHONPATH", "")},
    "otel_unconfigured": {},
}
BLOCK = 5


def _worker(h: Harness, variant: str) -> Worker:
    def ready(w: Worker) -> None:
        ids = [h.ct.noop.trigger(None).id for _ in range(8)]
        deadline = time.monotonic() + 40
        while h.ct_final_count(ids) < len(ids):
            if not w.alive() or time.monotonic() > deadline:
                raise SystemExit(f"obs worker did not warm up; see {w.log_path}")
            time.sleep(0.01)

    return Worker(
        "benchmarks.app_obs", CT_QUEUE, VARIANTS[variant], tag=f"ct-obs-{variant}", ready=ready
    )


def _session(h: Harness, variant: str, runs: int, calls: int, acc: dict[str, Any]) -> None:
    from benchmarks import app_obs

    tasks = {"noop": (app_obs.noop, None), "log": (app_obs.log_heavy, {"n": calls})}
    h.flush()
    log_ids: list[str] = []
    with _worker(h, variant) as w:
        for task, payload in tasks.values():
            for _ in range(3):
                _roundtrip(h, task, payload)
        meter = CpuMeter({"worker": w.pids()}).start()
        for b in range(0, runs, BLOCK):
            names = list(tasks) if (b // BLOCK) % 2 == 0 else list(tasks)[::-1]
            for name in names:
                task, payload = tasks[name]
                for _ in range(min(BLOCK, runs - b)):
                    seconds, run_id = _roundtrip(h, task, payload)
                    acc[variant][name].append(seconds)
                    if name == "log":
                        log_ids.append(run_id)
        acc[variant]["worker_cpu_s"] += meter.stop().get("worker_cpu_s") or 0.0
    for (raw,) in h.ct_records(log_ids, "output"):
        out = json.loads(raw)
        acc[variant]["ct_us"].append(out["ct_us_per_call"])
        acc[variant]["stdlib_us"].append(out["stdlib_us_per_call"])
        acc[variant]["otel"].add(out["otel"])


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def obs(h: Harness, size: dict[str, int]) -> dict[str, Any]:
    """The ``obs`` case (see the module docstring)."""
    runs, calls, sessions = size["obs_runs"], size["obs_calls"], size["obs_sessions"]
    acc: dict[str, Any] = {
        v: {"noop": [], "log": [], "ct_us": [], "stdlib_us": [], "otel": set(), "worker_cpu_s": 0.0}
        for v in VARIANTS
    }
    for s in range(sessions):
        for variant in list(VARIANTS) if s % 2 == 0 else list(VARIANTS)[::-1]:
            log(f"  obs session {s + 1}/{sessions}: {variant}")
            _session(h, variant, runs, calls, acc)
    result: dict[str, Any] = {}
    for variant, a in acc.items():
        noop, logged = summarize_ms(a["noop"]), summarize_ms(a["log"])
        added_ms = logged["p50_ms"] - noop["p50_ms"]
        result[variant] = {
            "opentelemetry_in_worker": sorted(a["otel"]),
            "noop_run": noop,
            "log_run": logged,
            "ct_logger_info_us_in_run": _median(a["ct_us"]),
            "stdlib_logger_info_us_in_run": _median(a["stdlib_us"]),
            "added_p50_us_per_ct_logger_info": round(added_ms * 1000 / calls, 2),
            "worker_cpu_s": round(a["worker_cpu_s"], 2),
        }
    absent, present = result["no_otel"], result["otel_unconfigured"]
    ratio = round(present["noop_run"]["p50_ms"] / absent["noop_run"]["p50_ms"], 3)
    log(
        f"  obs: ct.logger.info {absent['ct_logger_info_us_in_run']} us; no-op run p50 "
        f"ratio (otel unconfigured / absent) {ratio}"
    )
    return {
        "params": {
            "runs_per_session": runs,
            "logger_calls_per_run": calls,
            "sessions_per_variant": sessions,
            "worker": "prefork -c 2",
            "worker_log_level": "WARNING",
        },
        "variants": result,
        "ct_logger_info_us": absent["ct_logger_info_us_in_run"],
        "stdlib_logger_info_us": absent["stdlib_logger_info_us_in_run"],
        "ratio": ratio,
        "ratios": {
            "noop_run_p50": ratio,
            "log_run_p50": round(present["log_run"]["p50_ms"] / absent["log_run"]["p50_ms"], 3),
            "ct_logger_info_in_run": round(
                present["ct_logger_info_us_in_run"] / absent["ct_logger_info_us_in_run"], 3
            ),
        },
        "bare_celery": "no equivalent of a run log or of ct's spans: the stdlib logger call "
        "inside the same runs (stdlib_logger_info_us) is the bare-Celery reference",
        "ratio_definition": "no-op run round-trip p50 with OpenTelemetry installed but "
        "unconfigured / p50 with it not importable, same benchmark run (1.0 = not having "
        "OpenTelemetry costs the same; > 1.0 = cheaper without it)",
    }
