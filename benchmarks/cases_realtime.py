"""Case ``realtime``: how fast a change reaches a subscriber, and how many subscribers one
process holds (SEMANTICS §12.1; ``celery_trigger/realtime.py``, ``_engine/hub.py``).

1. Latency, one update at a time (ping-pong: the publisher waits for the subscriber's ack
   before the next update, so nothing queues up or coalesces; ``benchmarks/app_realtime.py``):
   - ``ct.in_task``: a run on a prefork ``-c 2`` worker makes ``ct.metadata.set`` +
     ``ct.metadata.flush()``; this process follows it with ``ct.runs.subscribe_to_run``. From
     the ``time.time()`` stamped in the task just before ``set`` to the subscription yielding
     the run with that update (two processes, one clock).
   - ``ct.outside``: ``ct.runs.update_metadata`` on a delayed run from this process, then
     ``next()`` on the subscription (same thread): from before the call to the yield.
     ``update_call`` is the call alone.
   - ``bare.poll``: the closest bare-Celery equivalent of a run subscription: the task calls
     ``self.update_state(state="PROGRESS", meta=...)`` and this process polls
     ``AsyncResult(id).info`` (one GET per poll) every 0.5 ms, the best case; ``bare.poll_100ms``
     polls every 100 ms, a common web-app interval. The task waits a random part of the
     interval before each update (else updates lock to the poll loop's phase).
   - ``bare.events``: the push alternative: the task calls ``self.send_event("task-progress",
     ...)`` and a ``app.events.Receiver`` thread here gets it over the broker (Redis PUB/SUB).
     No state is stored: a late reader cannot get the current progress, unlike the others.
2. Fan-out (no worker): K subscriptions iterated with ``async for`` as asyncio tasks of one
   event loop, on one run (every subscriber follows the same run) or on K runs (one each).
   Runs are delayed by an hour so nothing executes them. Each round sets ``round`` with
   ``ct.runs.update_metadata`` (once, or on each of the K runs, from a separate thread); the
   round ends when every subscriber has yielded it. ``rt_rounds`` rounds on one run, one
   round on K runs (K updates per round: the most expensive part of the case). Finally every
   run is cancelled and each subscriber must yield ``CANCELED`` and end (stop_on_completion).
   Latency per subscriber = its yield time - the time just before its run's update call
   (same process). A ``threads`` variant (one OS thread per ``for`` loop) is measured at the
   smallest K for reference. RSS and thread counts of this process are read from
   ``/proc/self/status``.

The headline ``ratio`` is bare best-case poll p50 ÷ ct in-task p50 (higher is better for ct).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import celery_trigger as ct

from ._harness import BARE_QUEUES, CT_QUEUE, Harness
from ._infra import Worker, log, summarize_ms, wait_until

POLL_FAST_S = 0.0005
POLL_SLOW_S = 0.1
SKIP = ["payload", "output"]
DEADLINE_S = 60.0


# --- 1. latency ----------------------------------------------------------------------------
def _ct_worker(h: Harness) -> Worker:
    def ready(w: Worker) -> None:
        ids = [h.ct.noop.trigger(None).id for _ in range(8)]
        deadline = time.monotonic() + 40
        while h.ct_final_count(ids) < len(ids):
            if not w.alive() or time.monotonic() > deadline:
                raise SystemExit(f"realtime ct worker did not warm up; see {w.log_path}")
            time.sleep(0.01)

    env = {"BENCH_RT_SIDE": "ct"}
    return Worker("benchmarks.app_realtime", CT_QUEUE, env, tag="ct-rt", ready=ready)


def _bare_worker(h: Harness) -> Worker:
    q = BARE_QUEUES["default"]

    def ready(w: Worker) -> None:
        for res in [h.bare.noop.apply_async((None,), queue=q) for _ in range(8)]:
            if not w.alive():
                raise SystemExit(f"realtime bare worker died; see {w.log_path}")
            res.get(timeout=40)

    env = {"BENCH_RT_SIDE": "bare", "BENCH_BARE_SETTINGS": "default", "BENCH_BARE_QUEUE": q}
    return Worker("benchmarks.app_realtime", q, env, tag="bare-rt", ready=ready)


def _ct_in_task(h: Harness, n: int, warmup: int) -> dict[str, Any]:
    from benchmarks import app_realtime

    ack, total, expected = "rt:ack:ct", n + warmup, 0
    lat: list[float] = []
    handle = app_realtime.ct_progress.trigger({"n": total, "ack": ack})
    last = None
    for run in ct.runs.subscribe_to_run(handle.id, skip_columns=SKIP):
        now, meta, last = time.time(), run.metadata or {}, run
        if meta.get("i") == expected:
            if expected >= warmup:
                lat.append(now - meta["t"])
            expected += 1
            h.r.lpush(ack, 1)
    if last is None or last.status is not ct.RunStatus.COMPLETED or expected != total:
        raise RuntimeError(f"ct progress run ended {last and last.status} after {expected}")
    return {
        "what": "metadata.set + flush in a running task -> subscribe_to_run yields it",
        **summarize_ms(lat),
    }


def _ct_outside(h: Harness, n: int, warmup: int) -> dict[str, Any]:
    handle = h.ct.noop.trigger(None, delay="1h")
    calls: list[float] = []
    lat: list[float] = []
    with ct.runs.subscribe_to_run(handle.id, skip_columns=SKIP) as sub:
        it = iter(sub)
        next(it)  # the current state
        for i in range(n + warmup):
            t0 = time.perf_counter()
            ct.runs.update_metadata(handle.id, operations=[{"type": "set", "key": "i", "value": i}])
            t1 = time.perf_counter()
            while (next(it).metadata or {}).get("i") != i:
                pass
            if i >= warmup:
                calls.append(t1 - t0)
                lat.append(time.perf_counter() - t0)
    ct.runs.cancel(handle.id)
    return {
        "what": "runs.update_metadata on a delayed run -> next() on its subscription, same thread",
        **summarize_ms(lat),
        "update_call": summarize_ms(calls),
    }


def _bare_poll(h: Harness, n: int, warmup: int, poll_s: float) -> dict[str, Any]:
    from benchmarks import app_realtime

    ack, total, expected = f"rt:ack:poll{poll_s}", n + warmup, 0
    lat: list[float] = []
    polls = 0
    res = app_realtime.bare_state.apply_async((total, ack, poll_s), queue=BARE_QUEUES["default"])
    deadline = time.monotonic() + DEADLINE_S
    while expected < total:
        info = res.info  # one GET of the result key
        polls += 1
        if isinstance(info, dict) and info.get("i") == expected:
            if expected >= warmup:
                lat.append(time.time() - info["t"])
            expected += 1
            h.r.lpush(ack, 1)
            continue
        if time.monotonic() > deadline:
            raise RuntimeError(f"bare poll stuck at update {expected} (state {res.state})")
        time.sleep(poll_s)
    res.get(timeout=DEADLINE_S)
    return {
        "what": "self.update_state(PROGRESS, meta) in the task; AsyncResult(id).info polled "
        f"every {poll_s * 1000:g} ms; each update waits a random 0-{poll_s * 1000:g} ms "
        "after the previous ack, so it lands at a random phase of the poll loop",
        "poll_interval_ms": poll_s * 1000,
        "polls_per_update": round(polls / total, 1),
        **summarize_ms(lat),
    }


def _bare_events(h: Harness, n: int, warmup: int) -> dict[str, Any]:
    from benchmarks import app_realtime

    app = h.bare.app
    got: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
    ack, total, expected = "rt:ack:events", n + warmup, 0
    lat: list[float] = []
    with app.connection_for_read() as conn:
        recv = app.events.Receiver(
            conn, handlers={"task-progress": lambda e: got.put((time.time(), e))}
        )
        thread = threading.Thread(
            target=recv.capture, kwargs={"limit": None, "timeout": None, "wakeup": False}
        )
        thread.start()
        try:
            _receiver_ready(app, got)
            res = app_realtime.bare_event.apply_async((total, ack), queue=BARE_QUEUES["default"])
            while expected < total:
                now, event = got.get(timeout=DEADLINE_S)
                if event.get("uuid") == res.id and event.get("i") == expected:
                    if expected >= warmup:
                        lat.append(now - event["sent"])
                    expected += 1
                    h.r.lpush(ack, 1)
            res.get(timeout=DEADLINE_S)
        finally:
            recv.should_stop = True
            thread.join(10)
    return {
        "what": "self.send_event('task-progress') in the task; an app.events.Receiver "
        "thread gets it over the broker's PUB/SUB (no stored state)",
        **summarize_ms(lat),
    }


def _receiver_ready(app: Any, got: queue.Queue[tuple[float, dict[str, Any]]]) -> None:
    """Send pings until the receiver's queue is bound (earlier events are dropped)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with app.events.default_dispatcher() as d:
            d.send("task-progress", uuid="ping", i=-1, sent=time.time())
        try:
            while got.get(timeout=0.2)[1].get("uuid") != "ping":
                pass
            return
        except queue.Empty:
            continue
    raise RuntimeError("the Celery event receiver never received a ping")


def _latency(h: Harness, size: dict[str, int]) -> dict[str, Any]:
    n, warmup, slow_n = size["rt_updates"], size["rt_warmup"], size["rt_slow_poll_updates"]
    h.flush()
    out: dict[str, Any] = {"ct": {}, "bare": {}}
    with _ct_worker(h):
        out["ct"]["in_task"] = _ct_in_task(h, n, warmup)
    out["ct"]["outside"] = _ct_outside(h, n, warmup)
    h.flush()
    with _bare_worker(h):
        out["bare"]["poll"] = _bare_poll(h, n, warmup, POLL_FAST_S)
        if slow_n:
            out["bare"]["poll_100ms"] = _bare_poll(h, slow_n, 2, POLL_SLOW_S)
        out["bare"]["events"] = _bare_events(h, n, warmup)
    for side in ("ct", "bare"):
        for name, v in out[side].items():
            log(f"  realtime latency {side}.{name}: p50 {v['p50_ms']} ms, p99 {v['p99_ms']} ms")
    return out


# --- 2. fan-out ----------------------------------------------------------------------------
def _proc_status() -> dict[str, float]:
    fields: dict[str, float] = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == "VmRSS":
                fields["rss_mb"] = round(int(value.split()[0]) / 1024, 1)
            elif key == "Threads":
                fields["threads"] = int(value)
    return fields


class _Rec:
    __slots__ = ("final", "final_status", "first", "rounds")

    def __init__(self) -> None:
        self.first: float | None = None
        self.rounds: dict[int, float] = {}
        self.final: float | None = None
        self.final_status = ""

    def see(self, run: ct.Run) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        rnd = (run.metadata or {}).get("round")
        if rnd is not None and rnd not in self.rounds:
            self.rounds[rnd] = now
        if run.finished_at is not None:
            self.final, self.final_status = now, run.status.value


def _publish(run_ids: list[str], action: Callable[[str], Any]) -> dict[str, float]:
    sent: dict[str, float] = {}
    for run_id in run_ids:
        sent[run_id] = time.perf_counter()
        action(run_id)
    return sent


async def _until(pred: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def _fanout_async(h: Harness, k: int, rounds: int, one_run: bool) -> dict[str, Any]:
    h.flush()
    run_ids = [h.ct.noop.trigger(None, delay="1h").id for _ in range(1 if one_run else k)]
    of = [run_ids[0] if one_run else run_ids[i] for i in range(k)]
    recs = [_Rec() for _ in range(k)]
    before = _proc_status()
    pool = ThreadPoolExecutor(1, thread_name_prefix="rt-bench-publisher")

    async def follow(i: int) -> None:
        async for run in ct.runs.subscribe_to_run(of[i], skip_columns=SKIP):
            recs[i].see(run)

    async def main() -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        tasks = [asyncio.create_task(follow(i)) for i in range(k)]
        subscribed = await _until(lambda: all(r.first for r in recs), DEADLINE_S)
        res: dict[str, Any] = {"subscribe_all_s": round(time.perf_counter() - t0, 3)}
        res["subscribed"] = sum(1 for r in recs if r.first)
        res["during"] = _proc_status()
        lat: list[float] = []
        missing = 0
        cpu0 = time.process_time()
        for rnd in range(rounds if subscribed else 0):
            ops = [{"type": "set", "key": "round", "value": rnd}]
            sent = await loop.run_in_executor(
                pool,
                _publish,
                run_ids,
                lambda rid, ops=ops: ct.runs.update_metadata(rid, operations=ops),
            )
            await _until(lambda: all(rnd in r.rounds for r in recs), DEADLINE_S)  # noqa: B023
            missing += sum(1 for r in recs if rnd not in r.rounds)
            lat.extend(r.rounds[rnd] - sent[of[i]] for i, r in enumerate(recs) if rnd in r.rounds)
        sent = await loop.run_in_executor(pool, _publish, run_ids, ct.runs.cancel)
        done, pending = await asyncio.wait(tasks, timeout=DEADLINE_S)
        for task in pending:
            task.cancel()
        res["cpu_s_updates_and_final"] = round(time.process_time() - cpu0, 2)
        finals = [r.final - sent[of[i]] for i, r in enumerate(recs) if r.final is not None]
        res.update(
            update_rounds=rounds,
            update_latency=summarize_ms(lat) if lat else None,
            updates_missed=missing,
            final_received=sum(1 for r in recs if r.final_status == "CANCELED"),
            final_latency=summarize_ms(finals) if finals else None,
            ended=len(done),
        )
        return res

    try:
        res = asyncio.run(main())
    finally:
        pool.shutdown()
    res["every_subscriber_got_every_final_state"] = res["final_received"] == k
    res.update(k=k, runs=len(run_ids), before=before, after=_proc_status())
    return res


def _fanout_threads(h: Harness, k: int, rounds: int) -> dict[str, Any]:
    h.flush()
    run_id = h.ct.noop.trigger(None, delay="1h").id
    recs = [_Rec() for _ in range(k)]
    before = _proc_status()

    def follow(rec: _Rec) -> None:
        for run in ct.runs.subscribe_to_run(run_id, skip_columns=SKIP):
            rec.see(run)

    threads = [threading.Thread(target=follow, args=(r,), daemon=True) for r in recs]
    for t in threads:
        t.start()
    if not asyncio.run(_until(lambda: all(r.first for r in recs), DEADLINE_S)):
        raise RuntimeError("thread subscribers did not all start")
    during = _proc_status()
    lat: list[float] = []
    for rnd in range(rounds):
        t0 = time.perf_counter()
        ct.runs.update_metadata(run_id, operations=[{"type": "set", "key": "round", "value": rnd}])
        asyncio.run(_until(lambda: all(rnd in r.rounds for r in recs), DEADLINE_S))  # noqa: B023
        lat.extend(r.rounds[rnd] - t0 for r in recs if rnd in r.rounds)
    t0 = time.perf_counter()
    ct.runs.cancel(run_id)
    for t in threads:
        t.join(DEADLINE_S)
    finals = [r.final - t0 for r in recs if r.final is not None]
    received = sum(1 for r in recs if r.final_status == "CANCELED")
    return {
        "k": k,
        "runs": 1,
        "update_latency": summarize_ms(lat),
        "final_received": received,
        "final_latency": summarize_ms(finals) if finals else None,
        "every_subscriber_got_every_final_state": received == k,
        "before": before,
        "during": during,
    }


def _fanout(h: Harness, size: dict[str, int]) -> dict[str, Any]:
    ks = [k for k in (size["rt_k_small"], size["rt_k_medium"], size["rt_k_large"]) if k]
    rounds = size["rt_rounds"]
    out: dict[str, Any] = {"async_one_run": {}, "async_k_runs": {}}
    for k in ks:
        for mode, one_run in (("async_one_run", True), ("async_k_runs", False)):
            r = _fanout_async(h, k, rounds if one_run else 1, one_run)
            out[mode][str(k)] = r
            lat, fin = r["update_latency"] or {}, r["final_latency"] or {}
            log(
                f"  realtime fan-out {mode} K={k}: update p50 {lat.get('p50_ms')} p99 "
                f"{lat.get('p99_ms')} ms, final {r['final_received']}/{k} p99 "
                f"{fin.get('p99_ms')} ms, rss {r['during'].get('rss_mb')} MB"
            )
    out["threads_one_run"] = {str(ks[0]): _fanout_threads(h, ks[0], rounds)}
    return out


def _hub_after(h: Harness) -> dict[str, Any]:
    """Check that every subscription let go of its keys and the hub's thread exited (the
    last unwatch wakes it; Redis stops right after this case)."""
    from celery_trigger._engine.hub import hub_for

    hub = hub_for(h.ct.engine)
    watched = hub.watched
    if watched == 0:
        wait_until(lambda: hub._thread is None, 15, what="realtime hub thread exit")
    return {"hub_keys_watched_after_case": watched, "process_after_case": _proc_status()}


def realtime(h: Harness, size: dict[str, int]) -> dict[str, Any]:
    """The ``realtime`` case (see the module docstring)."""
    latency = _latency(h, size)
    fanout = _fanout(h, size)
    fanout["after"] = _hub_after(h)
    ct_p50 = latency["ct"]["in_task"]["p50_ms"]
    bare = latency["bare"]
    largest = max(fanout["async_one_run"], key=int)
    if fanout["after"]["hub_keys_watched_after_case"]:
        raise RuntimeError(f"subscriptions leaked hub keys: {fanout['after']}")
    return {
        "params": {
            "updates": size["rt_updates"],
            "warmup": size["rt_warmup"],
            "worker": "prefork -c 2 (bare: Celery default settings)",
            "poll_interval_ms": [POLL_FAST_S * 1000, POLL_SLOW_S * 1000],
            "fanout_rounds": size["rt_rounds"],
            "skip_columns": SKIP,
        },
        "notes": [
            "Latency is measured in ping-pong: one update in flight at a time, no coalescing.",
            "bare.poll is the closest stored-state equivalent of a run subscription "
            "(update_state + AsyncResult polling) at a 0.5 ms best-case interval; real apps "
            "poll far less often, which adds about half the interval (see bare.poll_100ms).",
            "bare.events is push, like ct, but stores nothing: a subscriber that connects "
            "late or reconnects gets no current state; events also need a receiver per "
            "process and carry no run object.",
            "ct.in_task includes the flush (one Lua call writing the metadata and its "
            "event) and the subscriber's re-read of the run record.",
        ],
        "latency": latency,
        "fanout": fanout,
        "ratio": round(bare["poll"]["p50_ms"] / ct_p50, 3),
        "ratios": {
            "vs_bare_poll_0_5ms_p50": round(bare["poll"]["p50_ms"] / ct_p50, 3),
            "vs_bare_events_p50": round(bare["events"]["p50_ms"] / ct_p50, 3),
            **(
                {"vs_bare_poll_100ms_p50": round(bare["poll_100ms"]["p50_ms"] / ct_p50, 3)}
                if "poll_100ms" in bare
                else {}
            ),
        },
        "largest_fanout": {
            "k": int(largest),
            "one_run_final_received": fanout["async_one_run"][largest]["final_received"],
            "k_runs_final_received": fanout["async_k_runs"][largest]["final_received"],
        },
        "ratio_definition": "bare p50 / ct p50 of one progress update reaching a "
        "subscriber (ct: metadata.set+flush in the task -> subscribe_to_run; bare: "
        "update_state -> AsyncResult.info polled every 0.5 ms); ratios.* also vs Celery "
        "events and a 100 ms poll",
    }
