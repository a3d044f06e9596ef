"""The Store contract for the connection (``ConnectionStore``): ping, location. Every test
runs against RedisStore and MemoryStore.
"""

from __future__ import annotations

from celery_trigger._store.base import (
    Store,
)
from celery_trigger._store.memory import MemoryStore


def test_ping_answers_true(store: Store) -> None:
    assert store.ping() is True


def test_location_names_the_redis_server_or_none(store: Store) -> None:
    # Given either store / When asked where it lives
    where = store.location()
    # Then Redis names a host and database, memory nothing (direct enqueue needs a server)
    if isinstance(store, MemoryStore):
        assert where is None
    else:
        assert where is not None and where.port > 0 and where.db >= 0
