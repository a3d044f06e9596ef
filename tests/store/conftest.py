"""The ``store`` fixture shared by the contract modules: each test runs once per store.

RedisStore talks to the session's private redis-server; MemoryStore is a fresh instance.
Both use the test's own key prefix, and the Redis keys are deleted afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from celery_trigger._store.base import Store
from celery_trigger._store.memory import MemoryStore
from celery_trigger._store.redis import RedisStore
from tests.helpers import redis_client


@pytest.fixture(params=["redis", "memory"])
def store(request: pytest.FixtureRequest, key_prefix: str) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore(prefix=key_prefix)
        return
    redis_store = RedisStore(request.getfixturevalue("redis_server"), prefix=key_prefix)
    try:
        yield redis_store
    finally:
        client = redis_client(redis_store)
        keys = list(client.scan_iter(match=f"{key_prefix}:*", count=500))
        if keys:
            client.delete(*keys)
        redis_store.close()
