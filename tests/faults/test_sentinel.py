"""High availability (issue 12, item 10): the store behind Redis Sentinel. A primary, a replica
and three sentinels; the primary is SIGKILLed mid-workload and the runs carry on on the
promoted replica: none lost, none stuck, none run twice."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import celery_trigger as ct
from celery_trigger import _setup
from tests.helpers import wait_for

from .conftest import FaultEnv, RedisProc
from .sentinel import SentinelCluster

pytestmark = pytest.mark.crash


class _SentinelStore:
    """What ``FaultEnv`` needs of its store: the URL the client and the workers use."""

    def __init__(self, url: str) -> None:
        self.url = url


@pytest.fixture
def sentinel_env(tmp_path: Path) -> Iterator[tuple[FaultEnv, SentinelCluster]]:
    cluster = SentinelCluster(tmp_path)
    broker = RedisProc(tmp_path, aof=False)
    env = FaultEnv(tmp_path / "env", _SentinelStore(cluster.url), broker.url)  # type: ignore[arg-type]
    try:
        yield env, cluster
    finally:
        env.close()
        broker.close()
        cluster.close()
        _setup.reset()


def _trigger_through_failover(env: FaultEnv, task: str, n: int, **payload: Any) -> list[str]:
    """Trigger ``n`` runs, retrying while the store has no master yet (a typed error)."""
    made: list[str] = []

    def attempt() -> bool:
        try:
            made.extend(env.trigger_many(task, n, **payload))
            return True
        except ct.StoreUnavailableError:
            return False

    wait_for(attempt, timeout=20, interval=0.1, message="no trigger succeeded after failover")
    return made


def test_runs_continue_on_the_promoted_replica_when_the_primary_dies(
    sentinel_env: tuple[FaultEnv, SentinelCluster],
) -> None:
    env, cluster = sentinel_env
    first_master = cluster.master_port()
    # Given a worker on a store behind Sentinel, with a backlog of work and parked waits
    env.start_worker(concurrency=2)
    waits = env.trigger_many("fault-wait", 6, s=0.6)
    work = env.trigger_many("fault-work", 16, ms=150)
    wait_for(lambda: env.marks_named("start-work-"), timeout=15, interval=0.02)
    # When the primary is killed mid-workload
    cluster.kill_primary()
    killed = time.monotonic()
    wait_for(lambda: cluster.master_port() != first_master, timeout=30, interval=0.1)
    promoted = time.monotonic()
    # Then new runs can be triggered on the promoted replica
    after = _trigger_through_failover(env, "fault-work", 6, ms=50)
    # And every run, before and after the failover, completes once
    runs = waits + work + after
    report = env.report("sentinel failover (primary SIGKILL)", runs, ("work", "wait"), promoted)
    report.note = f"promoted {promoted - killed:.1f}s after the kill"
    assert cluster.master_port() == cluster.replica
    assert report.lost == 0, (report, env.statuses(runs))
    assert report.duplicated == 0, report
    assert not env.marks_named("nopayload-")
