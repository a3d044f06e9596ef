"""Version routing (D-21): runs pinned to a version run only on workers serving it.

- A worker declares the version it serves (``trigger_worker_version``, or the worker option
  ``trigger_version``). Its presence (``presence.py``) stores, next to each task definition,
  ``<task>@<version>`` with the same ``live_until``: "a live worker serves this task at this
  version" is a stored fact with an expiry, like the unversioned one.
- A run triggered with ``version=`` (or a child of a run that has one: children inherit the
  parent's version, as upstream locks them to it) waits in PENDING_VERSION until a worker
  serving that version is live (``prepare``, ``sync.release_pending``,
  ``presence.recheck_pending``).
- Its messages carry the header ``ct_version`` and travel on the versioned Celery queue
  ``<queue>@<version>`` that only workers of that version consume (``_celery``). A worker of
  another version that still receives one (a message published before routing applied,
  a hand-made send) does not claim it: ``presence.misrouted`` publishes the run again, routed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .._serialization import dumps, loads
from .engine import Engine

#: Between a task id and a version in a stored liveness entry.
SEP = "@"


def versioned(name: str, version: str) -> str:
    """The name of ``name`` (a task id or a Celery queue) at ``version``."""
    return f"{name}{SEP}{version}"


def live_defs(task_ids: Iterable[str], version: str | None, live_until: int) -> dict[str, str]:
    """The stored liveness of ``task_ids`` served at ``version`` (nothing without one)."""
    if not version:
        return {}
    return {versioned(t, version): dumps({"live_until": live_until}) for t in task_ids}


def serves_version(engine: Engine, task_id: str, version: str, stamp: int) -> bool:
    """Whether a live worker serves ``task_id`` at ``version``."""
    text = engine.store.get_task_def(versioned(task_id, version))
    return bool(text) and int(loads(text).get("live_until") or 0) > stamp


def waits_for_version(engine: Engine, task_id: str, record: Mapping[str, str], stamp: int) -> bool:
    """Whether a stored run is pinned to a version no live worker serves."""
    version = record.get("version")
    return bool(version) and not serves_version(engine, task_id, str(version), stamp)
