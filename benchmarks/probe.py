"""Timing probes: wrap named functions with wall and CPU accumulators (for ``breakdown``).

The probes patch attributes in the benchmark's own processes only (the library files are
never touched). A wrapper costs about 1 µs per call (two clocks read twice); ``breakdown``
reports the probed and unprobed totals side by side. In a worker, ``install_worker_probe``
wraps the engine's steps inside every pool child and, when the child exits, writes
``<BENCH_PROBE>/<kind>-<pid>.json`` (and ``<kind>-<pid>.pstats`` if ``BENCH_CPROFILE=1``).
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable
from typing import Any

_perf = time.perf_counter
_cpu = time.thread_time


class Probe:
    """Per-name call counts, total wall seconds and total thread-CPU seconds."""

    def __init__(self) -> None:
        self.stats: dict[str, list[float]] = {}
        self._patched: list[tuple[Any, str, Any, bool]] = []

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        box = self.stats.setdefault(name, [0, 0.0, 0.0])

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t, c = _perf(), _cpu()
            try:
                return fn(*args, **kwargs)
            finally:
                box[0] += 1
                box[1] += _perf() - t
                box[2] += _cpu() - c

        timed.__probe_original__ = fn  # type: ignore[attr-defined]
        return timed

    def patch(self, obj: Any, attr: str, name: str | None = None) -> None:
        own = attr in getattr(obj, "__dict__", {})
        original = getattr(obj, attr)
        self._patched.append((obj, attr, obj.__dict__.get(attr) if own else None, own))
        setattr(obj, attr, self.wrap(name or attr, original))

    def restore(self) -> None:
        """Undo every ``patch``, newest first."""
        while self._patched:
            obj, attr, original, own = self._patched.pop()
            if own:
                setattr(obj, attr, original)
            else:
                delattr(obj, attr)

    def snapshot(self) -> dict[str, dict[str, float]]:
        return {
            k: {"calls": int(v[0]), "wall_s": v[1], "cpu_s": v[2]} for k, v in self.stats.items()
        }

    def zero(self) -> None:
        for box in self.stats.values():
            box[0], box[1], box[2] = 0, 0.0, 0.0


def install_trigger_probe(probe: Probe, app: Any, engine: Any) -> None:
    """Wrap the steps of ``task.trigger`` / ``batch_trigger`` in this process."""
    from celery_trigger import auth
    from celery_trigger._engine import dispatch, prepare

    probe.patch(dispatch, "prepare", "prepare (validation, incl. JSON)")
    probe.patch(prepare, "dumps", "json dumps")
    probe.patch(engine.store, "create_runs", "store.create_runs (Lua script)")
    if engine.broker.direct:  # direct enqueue: the script pushes the message
        probe.patch(dispatch, "_plan_direct", "direct enqueue: plan (build message)")
        probe.patch(engine.broker, "announce", "direct enqueue: after_task_publish")
        probe.patch(app.amqp, "as_task_v2", "celery amqp.as_task_v2 (message)")
    probe.patch(engine.broker, "send", "publish (send_task: subscribe + kombu)")
    probe.patch(engine.store, "put_batch", "store.put_batch")
    probe.patch(auth, "run_handle_token", "JWT run_handle_token")
    probe.patch(auth, "batch_handle_token", "JWT batch_handle_token")
    _install_publish_probe(probe, app, "ct")


def _install_publish_probe(probe: Probe, app: Any, side: str) -> None:
    """Wrap Celery's result subscription and kombu's publish for one app."""
    from kombu import Producer

    probe.patch(app.backend, "on_task_call", f"{side}: backend.on_task_call (SUBSCRIBE)")
    if not hasattr(Producer.publish, "__probe_original__"):
        probe.patch(Producer, "publish", "kombu Producer.publish")


def install_bare_publish_probe(probe: Probe, app: Any) -> None:
    _install_publish_probe(probe, app, "bare")


# worker side --------------------------------------------------------------------------------
def install_worker_probe(app: Any, kind: str) -> None:
    """Called by ``app_bare``/``app_ct`` at import when ``BENCH_PROBE`` is set."""
    from celery import signals

    out_dir = os.environ["BENCH_PROBE"]
    probe = Probe()
    main_probe = Probe()
    state: dict[str, Any] = {}
    if kind == "ct":  # the worker's main process runs the timer service
        from celery_trigger._engine.timers import TimerService

        main_probe.patch(TimerService, "tick", "main: TimerService.tick")

    @signals.worker_shutdown.connect(weak=False)
    def _main_exit(**_: Any) -> None:
        with open(os.path.join(out_dir, f"main-{kind}-{os.getpid()}.json"), "w") as f:
            json.dump({"pid": os.getpid(), "kind": kind, "stats": main_probe.snapshot()}, f)

    @signals.worker_process_init.connect(weak=False)
    def _child_start(**_: Any) -> None:
        from celery.app import trace

        for name in ("fast_trace_task", "trace_task_ret"):  # whichever the pool sends
            setattr(trace, name, probe.wrap("child: whole task (trace)", getattr(trace, name)))
        probe.patch(app.backend, "store_result", "celery backend.store_result")
        if kind == "ct":
            _wrap_engine(probe, app)
        if os.environ.get("BENCH_CPROFILE") == "1":
            import cProfile

            state["profiler"] = cProfile.Profile()
            state["profiler"].enable()
        t = os.times()
        state["cpu0"] = t.user + t.system

    @signals.worker_process_shutdown.connect(weak=False)
    def _child_exit(**_: Any) -> None:
        t = os.times()
        data = {
            "pid": os.getpid(),
            "kind": kind,
            "child_cpu_s": t.user + t.system - state.get("cpu0", 0.0),
            "stats": probe.snapshot(),
        }
        base = os.path.join(out_dir, f"{kind}-{os.getpid()}")
        profiler = state.get("profiler")
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(base + ".pstats")
        with open(base + ".json", "w") as f:
            json.dump(data, f)


def _wrap_engine(probe: Probe, app: Any) -> None:
    from celery_trigger._celery.task import TriggerTask
    from celery_trigger._engine import engine as engine_handle
    from celery_trigger._engine.attempt import finish, flow, run
    from celery_trigger._engine.watchdog import Watchdog

    engine = engine_handle.current()
    store = engine.store
    probe.patch(TriggerTask, "__call__", "ct: TriggerTask.__call__ (engine total)")
    probe.patch(store, "claim_attempt", "ct: store.claim_attempt (Lua)")
    probe.patch(store, "finish_attempt", "ct: store.finish_attempt (Lua)")
    probe.patch(Watchdog, "start", "ct: watchdog.start")
    probe.patch(Watchdog, "stop", "ct: watchdog.stop")
    probe.patch(flow, "build_context", "ct: build_context")
    probe.patch(flow, "run_attempt", "ct: run_attempt (hooks + user fn)")
    probe.patch(run, "call_run", "ct: call_run (user fn)")
    probe.patch(finish, "dumps", "ct: finish json dumps (output, errors)")
    probe.patch(flow, "finish", "ct: finish (output JSON + finish + notify)")
    probe.patch(finish, "_written", "ct: after finish (participants: notify waiters)")
    for name in ("waiters", "remove_timers", "journal"):
        if hasattr(store, name):
            probe.patch(store, name, f"ct: store.{name}")
