"""The shared run context: one private Redis, both apps, their workers and read-back helpers.

``Harness`` starts the redis-server, points ``app_bare`` and ``app_ct`` at it through the
environment (they read it at import), and offers what every case needs: start a worker of
either kind, tell when runs or Celery results are final, and when they became final.
Reading state back never goes through celery-trigger's public API (``runs.retrieve`` builds
a full ``Run`` per call); it reads the run hashes directly, so the harness costs the same for
both sides.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from datetime import datetime
from types import ModuleType
from typing import Any

from ._infra import RedisServer, Worker, log, wait_for_quiet, wait_until

BARE_QUEUES = {"default": "bench-bare", "safe": "bench-bare-safe"}
CT_QUEUE = "bench-ct"
KEY_PREFIX = "bench"
FINAL = {"COMPLETED", "CANCELED", "FAILED", "CRASHED", "SYSTEM_FAILURE", "EXPIRED", "TIMED_OUT"}
_CHUNK = 1000


class Harness:
    """One benchmark invocation's Redis and apps. Use as a context manager."""

    bare: ModuleType
    ct: ModuleType

    def __init__(self, quiet_wait_s: float = 0.0, ct_store_db: int = 0) -> None:
        self.redis = RedisServer()
        self.quiet_wait_s = quiet_wait_s
        self.ct_store_db = ct_store_db

    def __enter__(self) -> Harness:
        self.redis.__enter__()
        os.environ["BENCH_REDIS_URL"] = self.redis.base
        os.environ["BENCH_KEY_PREFIX"] = KEY_PREFIX
        os.environ["BENCH_CT_QUEUE"] = CT_QUEUE
        os.environ["BENCH_BARE_QUEUE"] = BARE_QUEUES["default"]
        os.environ["BENCH_BARE_SETTINGS"] = "default"
        os.environ["BENCH_CT_STORE_DB"] = str(self.ct_store_db)
        from . import app_bare, app_ct

        self.bare, self.ct = app_bare, app_ct
        self.r = self.redis.client(0)
        self.r_backend = self.redis.client(1)
        self.r_store = self.redis.client(self.ct_store_db)
        self.keys = app_ct.engine.store.keys
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.bare.app.close()
            self.ct.app.close()
            self.ct.engine.close()
        finally:
            self.redis.__exit__()

    def settle(self, label: str) -> dict[str, float] | None:
        """Before a measurement: wait a while for other processes on the box to go quiet."""
        if self.quiet_wait_s <= 0:
            return None
        quiet = wait_for_quiet(self.quiet_wait_s)
        if quiet["waited_s"] > 1.5:
            log(
                f"  ({label}: waited {quiet['waited_s']} s for the machine to go quiet; "
                f"others use {quiet['others_cpus_busy']} CPUs)"
            )
        return quiet

    def flush(self) -> None:
        """Empty Redis between variants; never while a worker runs (it holds bindings)."""
        self.r.flushall()

    def redis_pid(self) -> int:
        assert self.redis.proc is not None
        return self.redis.proc.pid

    # workers --------------------------------------------------------------------------------
    def bare_worker(self, settings: str = "default", *, probe: str | None = None) -> Worker:
        queue = BARE_QUEUES[settings]
        env = {"BENCH_BARE_SETTINGS": settings, "BENCH_BARE_QUEUE": queue}
        if probe:
            env["BENCH_PROBE"] = probe

        def ready(w: Worker) -> None:
            results = [self.bare.noop.apply_async((None,), queue=queue) for _ in range(8)]
            deadline = time.monotonic() + 40
            for res in results:
                if not w.alive():
                    raise SystemExit(f"bare worker died; see {w.log_path}")
                res.get(timeout=max(deadline - time.monotonic(), 0.1))

        return Worker("benchmarks.app_bare", queue, env, tag=f"bare-{settings}", ready=ready)

    def ct_worker(self, *, probe: str | None = None) -> Worker:
        env = {"BENCH_PROBE": probe} if probe else {}

        def ready(w: Worker) -> None:
            ids = [self.ct.noop.trigger(None).id for _ in range(8)]
            deadline = time.monotonic() + 40
            while self.ct_final_count(ids) < len(ids):
                if not w.alive():
                    raise SystemExit(f"ct worker died; see {w.log_path}")
                if time.monotonic() > deadline:
                    statuses = [s for (s,) in self.ct_records(ids, "status")]
                    raise SystemExit(
                        f"ct worker did not complete warm-up (run statuses {statuses}, "
                        f"{self.r.llen(CT_QUEUE)} messages queued); see {w.log_path}"
                    )
                time.sleep(0.01)

        return Worker("benchmarks.app_ct", CT_QUEUE, env, tag="ct", ready=ready)

    # reading state back ---------------------------------------------------------------------
    def ct_records(self, run_ids: Sequence[str], *fields: str) -> list[list[Any]]:
        out: list[list[Any]] = []
        for i in range(0, len(run_ids), _CHUNK):
            pipe = self.r_store.pipeline(transaction=False)
            for run_id in run_ids[i : i + _CHUNK]:
                pipe.hmget(self.keys.run(run_id), *fields)
            out.extend(pipe.execute())
        return out

    def ct_final_count(self, run_ids: Sequence[str]) -> int:
        return sum(
            1
            for (status,) in self.ct_records(run_ids, "status")
            if status is not None and status.decode() in FINAL
        )

    def ct_completion(self, run_ids: Sequence[str], timeout: float) -> dict[str, Any]:
        """Wait until every run is final; return counts and the last ``finished`` time (s).

        The full check reads every record, so it only starts once the last run queued is
        final (runs are consumed about in order): polling must not steal the worker's CPU.
        """
        last_key = self.keys.run(run_ids[-1])
        wait_until(
            lambda: (self.r_store.hget(last_key, "status") or b"").decode() in FINAL,
            timeout,
            interval=0.01,
            what="last run final",
        )

        def all_final() -> list[list[Any]] | None:
            rows = self.ct_records(run_ids, "status", "finished")
            done = all(s is not None and s.decode() in FINAL for s, _ in rows)
            return rows if done else None

        rows = wait_until(all_final, timeout, interval=0.1, what="all runs final")
        statuses: dict[str, int] = {}
        for status, _ in rows:
            statuses[status.decode()] = statuses.get(status.decode(), 0) + 1
        last = max(int(f) for _, f in rows) / 1000.0
        return {"statuses": statuses, "last_final_ts": last}

    def bare_completion(self, task_ids: Sequence[str], timeout: float) -> dict[str, Any]:
        """Wait until every result is stored; return counts and the last ``date_done`` (s)."""
        keys = [f"celery-task-meta-{t}" for t in task_ids]
        wait_until(
            lambda: b'"SUCCESS"' in (self.r_backend.get(keys[-1]) or b""),
            timeout,
            interval=0.01,
            what="last result stored",
        )

        def all_stored() -> list[Any] | None:
            values: list[Any] = []
            for i in range(0, len(keys), _CHUNK):
                values.extend(self.r_backend.mget(keys[i : i + _CHUNK]))
            if any(v is None for v in values):
                return None
            metas = [json.loads(v) for v in values]
            return metas if all(m["status"] in ("SUCCESS", "FAILURE") for m in metas) else None

        metas = wait_until(all_stored, timeout, interval=0.1, what="all results stored")
        statuses: dict[str, int] = {}
        for meta in metas:
            statuses[meta["status"]] = statuses.get(meta["status"], 0) + 1
        last = max(datetime.fromisoformat(m["date_done"]).timestamp() for m in metas)
        return {"statuses": statuses, "last_final_ts": last}

    def backend_keys(self) -> int:
        return int(self.r_backend.dbsize())
