"""The Store protocols, one module per concern, and ``Store``, the composite the engine uses.

Each operation is atomic: ``RedisStore`` runs it as one Lua script (or one pipeline of
them), ``MemoryStore`` under one lock. Both pass the contract suite (``tests/store/``), one
module per protocol. Signatures name no key, client or Redis structure: only domain values
(``types.py``).
"""

from __future__ import annotations

from typing import Protocol

from .connection import ConnectionStore
from .durable import DurableStore
from .idempotency import IdempotencyStore
from .logs import LogStore
from .metadata import MetadataStore
from .realtime import Listener, RealtimeStore
from .retention import RetentionStore
from .runs import RunStore
from .schedules import ScheduleStore
from .slots import SlotStore
from .tasks import TaskStore
from .timers import TimerStore
from .tokens import TokenStore


class Store(
    RunStore,
    DurableStore,
    TokenStore,
    MetadataStore,
    IdempotencyStore,
    SlotStore,
    TimerStore,
    ScheduleStore,
    RealtimeStore,
    LogStore,
    TaskStore,
    RetentionStore,
    ConnectionStore,
    Protocol,
):
    """Every atomic operation the engine performs on runs, timers, queues, schedules,
    waitpoints and realtime feeds."""


__all__ = [
    "Listener",
    "Store",
    "RunStore",
    "DurableStore",
    "TokenStore",
    "MetadataStore",
    "IdempotencyStore",
    "SlotStore",
    "TimerStore",
    "ScheduleStore",
    "RealtimeStore",
    "LogStore",
    "TaskStore",
    "ConnectionStore",
    "RetentionStore",
]
