"""MemoryStore's metadata, tag and idempotency-key operations: ``metadata_apply.lua``,
``tags_add.lua`` and ``idem_clear.lua`` in Python, over the same keyspace and under the
store's lock.

A mixin of ``MemoryStore`` over ``MemoryBase``'s keyspace (``keys``, ``_state``,
``_lock``). Operations are applied by
``_engine.metadata_ops`` (the algorithm the Lua script implements) and the document is
stored in its canonical form (``metadata_ops.encode``), so both stores measure the size
limit on the same bytes.
"""

from __future__ import annotations

import json
import math
import threading
from typing import Any, Sequence

from ... import _metadata_ops as ops_
from ..._keys import Keys
from ..._vocab import FINAL_VALUES, EventKind
from ..types import MetaResult, MetaUpdate, Record
from .events import MemoryEvents
from .state import MemoryState, lua_num, mono_ms


class MemoryMeta(MemoryEvents):
    """The metadata, tags and idempotency-key part of the Store protocol for MemoryStore."""

    keys: Keys
    _state: MemoryState
    _lock: threading.RLock

    def apply_metadata(
        self, updates: Sequence[MetaUpdate], now_ms: int, *, max_bytes: int
    ) -> list[MetaResult]:
        """``metadata_apply.lua`` for each update."""
        with self._lock:
            return [self._apply(u, now_ms, max_bytes) for u in updates]

    def _apply(self, update: MetaUpdate, now_ms: int, max_bytes: int) -> MetaResult:
        record = self._state.hashes.get(self.keys.run(update.run_id))
        if record is None or "status" not in record:
            return MetaResult("missing")
        stored = record.get("meta") or ""

        def reply(status: str, text: str = stored) -> MetaResult:
            return MetaResult(status, text if update.reply else "")

        finished = record.get("finished")
        if (
            update.window_ms is not None
            and record["status"] in FINAL_VALUES
            and finished
            and float(finished) + update.window_ms < now_ms
        ):
            return reply("closed")
        doc: Any = json.loads(stored) if stored else {}
        operations = json.loads(update.operations)
        if not isinstance(doc, dict) or not isinstance(operations, list):
            return reply("invalid")
        applied = False
        for op in operations:
            if not _readable(op):
                return reply("invalid")
            doc, ok, _ = ops_.apply_one(doc, op)
            applied = applied or ok
        if not applied:
            return reply("ok")
        try:
            text = ops_.encode(doc)
        except ValueError:
            return reply("invalid")
        if len(text.encode("utf-8")) > max_bytes:
            return reply("too_large")
        record.update(meta=text, updated=lua_num(now_ms))
        self._emit(update.run_id, EventKind.METADATA)
        return reply("ok", text)

    def add_tags(self, run_id: str, tags: Sequence[str], max_tags: int) -> tuple[str, list[str]]:
        """``tags_add.lua``: all or none, indexed with the run's creation time."""
        with self._lock:
            record = self._state.hashes.get(self.keys.run(run_id))
            if record is None or "status" not in record:
                return "missing", []
            current: list[str] = json.loads(record.get("tags") or "[]")
            added = [t for t in dict.fromkeys(tags) if t not in current]
            if len(current) + len(added) > max_tags:
                return "limit", current
            if added:
                for tag in added:
                    self._state.zadd(
                        self.keys.tag(tag),
                        record.get("id", run_id),
                        float(record.get("created") or 0),
                    )
                current.extend(added)
                record["tags"] = json.dumps(current, separators=(",", ":"))
                self._emit(run_id, EventKind.TAGS)
            return "ok", current

    def idempotency_owner(self, task_id: str, key: str) -> str | None:
        with self._lock:
            return self._state.get(self.keys.idempotency(task_id, key))

    def release_idempotency_key(
        self, task_id: str, key: str, owner: str, *, clear_record: bool
    ) -> bool:
        """``idem_clear.lua``: compare-and-delete, then optionally clear the owner's fields."""
        with self._lock:
            name = self.keys.idempotency(task_id, key)
            if self._state.get(name) != owner:
                return False
            self._state.delete(name)
            record: Record | None = self._state.hashes.get(self.keys.run(owner))
            if clear_record and record is not None:
                for field in ("idem", "idem_key", "idem_exp"):
                    record.pop(field, None)
            return True

    def get_batch_key(self, key: str) -> str | None:
        with self._lock:
            return self._state.get(self.keys.batch_idempotency(key))

    def claim_batch_key(self, key: str, batch_id: str, ttl_ms: int) -> str:
        """``SET key batch NX PX ttl`` then ``GET``."""
        with self._lock:
            name = self.keys.batch_idempotency(key)
            if self._state.get(name) is None:
                expiry = mono_ms() + ttl_ms if ttl_ms > 0 else math.inf
                self._state.strings[name] = (batch_id, expiry)
            return self._state.strings[name][0]


def _readable(op: Any) -> bool:
    """What the Lua script accepts: known types, a key where one is needed, an object for
    ``update`` and a number (not a boolean) for ``increment``."""
    if not isinstance(op, dict) or op.get("type") not in ops_.OP_TYPES:
        return False
    if op["type"] == "update":
        return isinstance(op.get("value"), dict)
    if not isinstance(op.get("key"), str):
        return False
    value = op.get("value")
    return op["type"] != "increment" or (
        isinstance(value, (int, float)) and not isinstance(value, bool)
    )
