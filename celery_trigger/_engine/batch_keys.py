"""Batch-level idempotency keys and the per-item keys derived from them (SEMANTICS §5.3).

A batch key is processed like a trigger key (run-scoped unless it is a derived key or a
64-character string). It makes the *batch* idempotent: for 24 hours a repeat returns the
first batch (``is_cached``) without creating runs. Every item without its own key gets
``create([*batch key parts, str(index)], scope="run")``; an item's own key wins. The batch's
``idempotency_key_ttl`` is the default TTL of the item keys, not of the batch cache.

Invariants: options are validated before anything is written; the batch cache key is
claimed with ``SET NX`` after the runs exist, so concurrent repeats converge on one batch
id (their items converge on the same runs through the derived keys anyway).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._serialization import loads
from .._store.base import Store
from ..options import resolve_idempotency_ttl
from . import idempotency
from .state import current_state

#: How long a batch key returns the cached batch (``REQUEST_IDEMPOTENCY_TTL_IN_MS``).
BATCH_KEY_TTL_MS = 24 * 3600 * 1000
BATCH_OPTIONS = frozenset({"idempotency_key", "idempotency_key_ttl"})


@dataclass(frozen=True)
class BatchKey:
    """A batch's resolved options: the cache key (or None) and what items inherit."""

    digest: str | None
    user_key: str | None
    parts: tuple[str, ...]
    item_ttl: Any


def resolve(options: Mapping[str, Any] | None) -> BatchKey | None:
    """Validate batch options; ``None`` when there are none."""
    if not options:
        return None
    unknown = set(options) - BATCH_OPTIONS
    if unknown:
        raise TypeError(f"unknown batch option(s): {', '.join(sorted(unknown))}")
    ttl = options.get("idempotency_key_ttl")
    resolve_idempotency_ttl(ttl)  # raises for a bad value
    value = options.get("idempotency_key")
    if value is None:
        return BatchKey(None, None, (), ttl)
    state = current_state()
    key = idempotency.for_trigger(
        value, run_id=state.run_id if state else None, attempt=state.attempt if state else None
    )
    parts = (value,) if isinstance(value, str) else tuple(value)
    return BatchKey(str(key), key.user_key, parts, ttl)


def item_options(batch: BatchKey | None, options: dict[str, Any], index: int) -> dict[str, Any]:
    """An item's options with the key derived from the batch key and the default TTL."""
    if batch is None:
        return options
    if batch.digest is not None and options.get("idempotency_key") is None:
        state = current_state()
        options["idempotency_key"] = idempotency.create(
            [*batch.parts, str(index)],
            scope="run",
            run_id=state.run_id if state else None,
            attempt=state.attempt if state else None,
        )
    if batch.item_ttl is not None and options.get("idempotency_key_ttl") is None:
        options["idempotency_key_ttl"] = batch.item_ttl
    return options


def cached_batch(store: Store, batch: BatchKey | None) -> tuple[str, list[str]] | None:
    """The batch created under this batch key in the last 24 hours, with its run ids."""
    if batch is None or batch.digest is None:
        return None
    batch_id = store.get_batch_key(batch.digest)
    record = store.get_batch(batch_id) if batch_id else None
    if batch_id is None or record is None:
        return None
    return batch_id, list(loads(record["runs"]))


def claim(store: Store, batch: BatchKey | None, batch_id: str) -> str | None:
    """Claim the batch key for a batch just created; the winner's id if another won."""
    if batch is None or batch.digest is None:
        return None
    owner: str = store.claim_batch_key(batch.digest, batch_id, BATCH_KEY_TTL_MS)
    return None if owner == batch_id else owner


def fields(batch: BatchKey | None) -> dict[str, str]:
    """What the batch record stores about its key (the key as given, for batch.retrieve)."""
    return {"idem": batch.user_key} if batch is not None and batch.user_key else {}
