"""Run metadata inside runs: the local copy, buffered operations and flushing (SEMANTICS §8).

Each executing attempt that touches metadata gets one ``RunMetadata``: a local copy of its
document (read from the record the attempt claimed) to which operations apply at once, and
three queues of operations, for the run itself, its parent and its root. A flush collapses
the queues and sends them in one round trip; ``metadata_apply.lua`` applies them to the
*stored* documents, so concurrent writers (the run, its children, the API) compose. The
reply replaces the local copy with the stored document.

Invariants:
- queued operations are flushed by the per-process flusher thread every
  ``trigger_metadata_flush_interval`` seconds (1 s), when the run parks (before the park
  script, so a resumed attempt reads them back), and once more when the attempt ends,
  whatever its outcome (``end_attempt``, called by the lifecycle before the outcome is
  written);
- a flush never raises: a rejected write is logged and its operations dropped (the local
  copy may then differ from the stored one, as upstream); a write that did not reach the
  store keeps its operations queued for the next flush, and the attempt's last flush waits
  (bounded, ``outage.retrying``) for the store to come back;
- mutations made while the run replays (code before its last park re-executing, D-17) are
  skipped: they were applied and flushed before the park, and the resumed attempt's local
  copy was read after that flush. So metadata operations need no journal entries;
- ``parent`` of a root run is the run itself, as is ``root`` (META-9).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from .. import _metadata_ops as ops_
from .._serialization import dumps, loads
from .._store.base import MetaUpdate
from ..errors import InvalidRunStateError, RunNotFoundError, StoreUnavailableError
from .engine import Engine, current_engine
from .outage import retrying
from .state import RunState

logger = logging.getLogger("celery_trigger")

#: Metadata stays writable this long after the run finished (``RUN_UPDATABLE_WINDOW_MS``).
UPDATABLE_WINDOW_MS = 3600 * 1000
TARGETS = ("self", "parent", "root")


def now_ms() -> int:
    return int(time.time() * 1000)


class RunMetadata:
    """The metadata of one executing attempt (thread-safe: the run may use threads)."""

    def __init__(self, engine: Engine, state: RunState) -> None:
        self.engine = engine
        self.run_id = state.run_id
        self.targets = {
            "self": state.run_id,
            "parent": state.record.get("parent") or state.run_id,
            "root": state.root_id or state.run_id,
        }
        text = state.record.get("meta")
        self.doc: dict[str, Any] | None = loads(text) if text else None
        self.queues: dict[str, list[dict[str, Any]]] = {t: [] for t in TARGETS}
        self.lock = threading.RLock()
        self.interval = float(engine.settings.metadata_flush_interval)
        self.next_flush = time.monotonic() + self.interval

    # local copy --------------------------------------------------------------------------
    def mutate(self, target: str, op: dict[str, Any]) -> None:
        """Apply to the local copy (own operations) and queue for the next flush."""
        with self.lock:
            if target != "self":
                self.queues[target].append(op)
                return
            doc = self.doc if self.doc is not None else {}
            # A copy: later in-place changes of the local copy must not reach the queued op.
            value = op.get("value")
            local = {**op, "value": copy.deepcopy(value)} if isinstance(value, (dict, list)) else op
            doc, applied, changed = ops_.apply_one(doc, local)
            if applied and changed:
                self.doc = doc
                self.queues["self"].append(op)

    def get(self, key: str) -> Any:
        with self.lock:
            return copy.deepcopy(self.doc.get(key)) if self.doc is not None else None

    def current(self) -> dict[str, Any] | None:
        with self.lock:
            return copy.deepcopy(self.doc)

    def pending(self) -> bool:
        return any(self.queues.values())

    # the store ---------------------------------------------------------------------------
    def flush(self) -> None:
        """Send the queued operations now; errors are logged, never raised."""
        with self.lock:
            if not self.pending():
                return
            per_run: dict[str, list[dict[str, Any]]] = {}
            sent = {target: self.queues[target] for target in TARGETS}
            for target in TARGETS:
                ops = ops_.collapse(self.queues[target])
                self.queues[target] = []
                if ops:
                    per_run.setdefault(self.targets[target], []).extend(ops)
            updates = [
                MetaUpdate(run_id, dumps(ops, what="metadata"), reply=run_id == self.run_id)
                for run_id, ops in per_run.items()
            ]
            try:
                results = self.engine.store.apply_metadata(
                    updates, now_ms(), max_bytes=self.engine.settings.max_metadata_bytes
                )
            except StoreUnavailableError:
                # Not written: keep the operations, ahead of newer ones, for the next flush.
                for target in TARGETS:
                    self.queues[target] = sent[target] + self.queues[target]
                logger.warning(
                    "celery-trigger: flushing the metadata of run %s failed; will retry",
                    self.run_id,
                    exc_info=True,
                )
                return
            except Exception:
                logger.exception(
                    "celery-trigger: flushing the metadata of run %s failed", self.run_id
                )
                return
            for update, result in zip(updates, results, strict=True):
                if result.status != "ok":
                    _log_rejected(self.engine, self.run_id, update.run_id, result.status)
                elif update.reply and result.document:
                    self.doc = loads(result.document)

    def refresh(self) -> None:
        """Replace the local copy with the stored document (after sending what is queued)."""
        with self.lock:
            if self.pending():
                self.flush()
                return
            record = self.engine.store.get_run(self.run_id) or {}
            text = record.get("meta")
            self.doc = loads(text) if text else None


def _log_rejected(engine: Engine, run_id: str, target: str, status: str) -> None:
    reason = {
        "too_large": f"Metadata exceeds maximum size of {engine.settings.max_metadata_bytes} bytes",
        "closed": "Cannot update metadata for a completed run",
        "missing": f"run {target} does not exist",
        "invalid": "the document or an operation is not valid JSON metadata",
    }
    whose = "its own" if target == run_id else f"run {target}'s"
    logger.error(
        "celery-trigger: run %s could not update %s metadata: %s",
        run_id,
        whose,
        reason.get(status, status),
    )


class _Flusher:
    """One daemon thread per process flushing every registered ``RunMetadata`` on time."""

    def __init__(self) -> None:
        self._items: set[RunMetadata] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def register(self, item: RunMetadata) -> None:
        with self._lock:
            self._items.add(item)
            if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._loop, daemon=True, name="celery-trigger-metadata"
                )
                self._thread.start()
        self._wake.set()

    def unregister(self, item: RunMetadata) -> None:
        with self._lock:
            self._items.discard(item)

    def _loop(self) -> None:
        while True:
            with self._lock:
                items = list(self._items)
            now = time.monotonic()
            for item in items:
                if item.next_flush <= now:
                    item.next_flush = now + item.interval
                    item.flush()
            with self._lock:
                soonest = min((i.next_flush for i in self._items), default=now + 1.0)
            self._wake.wait(timeout=min(1.0, max(0.01, soonest - time.monotonic())))
            self._wake.clear()


_flusher = _Flusher()


def for_state(state: RunState) -> RunMetadata:
    """The attempt's ``RunMetadata``, created (and registered for flushing) on first use."""
    item = state.metadata
    if item is None:
        created = RunMetadata(current_engine(), state)
        state.metadata = created
        _flusher.register(created)
        return created
    assert isinstance(item, RunMetadata)
    return item


def replaying(state: RunState) -> bool:
    return state.journal.replaying


def flush_state(state: RunState) -> None:
    """Flush the attempt's queued operations, if it has any (before parking)."""
    if state.metadata is not None:
        state.metadata.flush()


def end_attempt(state: RunState) -> None:
    """The attempt is over (any outcome): stop periodic flushing and flush what is left."""
    item, state.metadata = state.metadata, None
    if not isinstance(item, RunMetadata):
        return
    _flusher.unregister(item)
    try:
        item.flush()
        if item.pending():  # the store was unreachable: wait for it, bounded, and retry
            retrying(item.engine, lambda: _flush_or_raise(item))
    except Exception:  # flush logs its own errors; never let metadata hide the outcome
        logger.exception("celery-trigger: final metadata flush of run %s failed", item.run_id)


def _flush_or_raise(item: RunMetadata) -> None:
    item.flush()
    if item.pending():
        raise StoreUnavailableError(f"metadata of run {item.run_id} not written")


def update_run(
    run_id: str, metadata: Mapping[str, Any] | None, operations: list[dict[str, Any]]
) -> dict[str, Any]:
    """Apply operations (after replacing the document by ``metadata`` when given) to a run's
    stored metadata from outside the run; return the stored document."""
    engine = current_engine()
    ops = (
        [{"type": "update", "value": dict(metadata)}] if metadata is not None else []
    ) + operations
    if not ops:
        record = engine.store.get_run(run_id)
        if record is None:
            raise RunNotFoundError(f"no run with id {run_id!r}")
        return loads(record.get("meta")) or {}
    update = MetaUpdate(
        run_id, dumps(ops, what="metadata"), window_ms=UPDATABLE_WINDOW_MS, reply=True
    )
    max_bytes = engine.settings.max_metadata_bytes
    result = engine.store.apply_metadata([update], now_ms(), max_bytes=max_bytes)[0]
    if result.status == "missing":
        raise RunNotFoundError(f"no run with id {run_id!r}")
    if result.status == "closed":
        raise InvalidRunStateError(
            "Cannot update metadata for a completed run (the window "
            "closes one hour after the run finished)"
        )
    if result.status == "too_large":
        raise ValueError(f"Metadata exceeds maximum size of {max_bytes} bytes")
    if result.status != "ok":
        raise ValueError("the stored metadata or an operation is not valid JSON metadata")
    return loads(result.document) or {}
