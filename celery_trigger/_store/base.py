"""Compatibility re-export: the Store protocols now live in ``protocols/`` and their value
types in ``types.py``. Import from there; this module goes once every caller has moved."""

from __future__ import annotations

from .protocols import Listener, Store
from .types import (
    BrokerDelivery,
    Claim,
    Created,
    Feed,
    FeedKind,
    IdempotencyKey,
    MetaResult,
    MetaUpdate,
    NewBatch,
    NewRun,
    Record,
    ServerLocation,
    SlotScope,
    Transition,
    feed_key,
    schedule_timer,
)

__all__ = [
    "BrokerDelivery",
    "Claim",
    "Created",
    "Feed",
    "FeedKind",
    "IdempotencyKey",
    "Listener",
    "MetaResult",
    "MetaUpdate",
    "NewBatch",
    "NewRun",
    "Record",
    "ServerLocation",
    "SlotScope",
    "Store",
    "Transition",
    "feed_key",
    "schedule_timer",
]
