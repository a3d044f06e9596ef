"""Sentinel URLs and settings (``_store/redis/connect.py``, issue 12 item 10)."""

from __future__ import annotations

import pytest
from celery import Celery

import celery_trigger as ct
from celery_trigger import _setup
from celery_trigger._store.redis.connect import parse_sentinel_url, sentinel_url


def test_a_sentinel_url_names_the_sentinels_the_master_the_db_and_the_password() -> None:
    url = "sentinel://:p%40ss@10.0.0.1:26379,[::1]:26380/cache/3"
    assert parse_sentinel_url(url) == (
        [("10.0.0.1", 26379), ("::1", 26380)],
        "cache",
        3,
        "p@ss",
    )
    assert parse_sentinel_url("redis+sentinel://h:1/m") == ([("h", 1)], "m", 0, None)


@pytest.mark.parametrize(
    "url", ["sentinel://h/m", "sentinel://h:1", "sentinel://h:1/m/x", "sentinel://h:x/m"]
)
def test_a_malformed_sentinel_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        parse_sentinel_url(url)


def test_the_settings_become_a_sentinel_url() -> None:
    assert sentinel_url("a:1, b:2", "m") == "sentinel://a:1,b:2/m"
    assert sentinel_url([("a", 1), "b:2"], "m") == "sentinel://a:1,b:2/m"
    with pytest.raises(ValueError):
        sentinel_url("", "m")


def test_sentinel_settings_stand_in_for_redis_url_with_a_non_redis_broker() -> None:
    app = Celery("sentinel-cfg", broker="amqp://guest@127.0.0.1//", set_as_current=False)
    app.conf.trigger_redis_sentinels = ["127.0.0.1:1", "127.0.0.1:2"]
    app.conf.trigger_redis_master = "primary"
    try:
        engine = ct.setup(app, key_prefix="sentinelcfg")
        assert engine.store.url == "sentinel://127.0.0.1:1,127.0.0.1:2/primary"  # type: ignore[attr-defined]
        assert engine.store.location() is None  # type: ignore[attr-defined]
    finally:
        _setup.reset()


def test_a_bad_sentinel_list_is_a_configuration_error() -> None:
    app = Celery("sentinel-bad", broker="amqp://guest@127.0.0.1//", set_as_current=False)
    try:
        engine = ct.setup(app, redis_sentinels=",", key_prefix="sentinelbad")
        with pytest.raises(ct.ConfigurationError, match="names no sentinel"):
            _ = engine.store
    finally:
        _setup.reset()
