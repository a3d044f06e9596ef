"""Helpers shared by the Store contract modules (``test_contract_*.py``): run records,
create and claim shorthands, the fixed clock.
"""

from __future__ import annotations

from typing import Any, TypeVar

from celery_trigger._store.base import (
    Claim,
    IdempotencyKey,
    NewRun,
    Store,
)

NOW = 1_700_000_000_000  # ms; large on purpose: values must come back as plain decimals
LEASE = 30_000
FINAL = ["COMPLETED", "CANCELED", "FAILED", "CRASHED", "SYSTEM_FAILURE", "EXPIRED", "TIMED_OUT"]
T = TypeVar("T")


def new_run(
    run_id: str,
    *,
    task_id: str = "t.send",
    status: str = "QUEUED",
    fields: dict[str, str] | None = None,
    **options: Any,
) -> NewRun:
    record = {"id": run_id, "task_id": task_id, "status": status, "queued_at": str(NOW)}
    record.update(fields or {})
    return NewRun(run_id=run_id, task_id=task_id, fields=record, **options)


def create(store: Store, run_id: str, now: int = NOW, **kwargs: Any) -> tuple[str, bool]:
    created = store.create_runs([new_run(run_id, **kwargs)], now)[0]
    return created.run_id, created.cached


def claim(
    store: Store,
    run_id: str,
    token: str = "tok-1",
    now: int = NOW,
    mode: str = "new",
    drop: tuple[str, ...] = (),
) -> Claim:
    return store.claim_attempt(run_id, token, now, LEASE, mode, drop)


def idem(key: str, task_id: str = "t.send") -> IdempotencyKey:
    return IdempotencyKey(task_id, key)
