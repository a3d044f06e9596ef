"""``setup(app)``: wire celery-trigger into a Celery app; settings and store come later.

The ``Engine`` returned (``_engine/engine.py``) is the process-wide handle: every module
reaches the store and the broker through ``current()``. Calling ``setup`` again (another
app, another test) replaces it.

Invariants:
- ``setup`` validates its own arguments only; the app's configuration is read when
  celery-trigger is first used (a trigger, a plain send of a trigger task, a worker start),
  so ``config_from_object``, Django settings and ``app.conf`` changes made after ``setup``
  count;
- ``setup`` changes no app-wide task setting. The broker-wide adjustments
  (``_config.broker_adjustments``) are applied when Celery loads the app's configuration, and
  the worker logs them once at start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from . import _celery
from ._config import Settings, TriggerConfig, broker_adjustments, resolve_settings
from ._engine import engine as _engine_handle
from ._engine import registry
from ._engine.engine import Engine, current, current_or_none, reset
from ._store.base import Store
from ._store.memory import MemoryStore
from ._store.redis import RedisStore
from ._store.redis.connect import sentinel_url
from .errors import ConfigurationError
from .options import clamp_max_duration

logger = logging.getLogger("celery_trigger")

#: The engine handle's former name (``setup`` returns an ``Engine``).
Trigger = Engine

__all__ = ["Engine", "Trigger", "current", "current_or_none", "reset", "setup"]


def _make_store(settings: Settings) -> Store:
    store: Store
    if settings.store == "memory":
        store = MemoryStore(prefix=settings.key_prefix)
    else:
        try:
            url = settings.redis_url
            if settings.redis_sentinels:
                url = sentinel_url(settings.redis_sentinels, settings.redis_master)
            store = RedisStore(url, prefix=settings.key_prefix)
        except ValueError as exc:  # a malformed Sentinel URL or sentinel list
            raise ConfigurationError([str(exc)]) from exc
    store.retention_ms = settings.retention_ms
    return store


def _longest_max_duration(
    conf: Any, config: TriggerConfig | None, overrides: Mapping[str, Any]
) -> float:
    """The longest attempt the tasks defined so far and the project defaults allow (s)."""
    values: list[Any] = [d.max_duration for d in registry.all_definitions()]
    values.append(config.max_duration if config is not None else None)
    values.append(overrides.get("max_duration"))
    values.append(conf.get("trigger_max_duration"))
    longest = 0.0
    for value in values:
        try:
            longest = max(longest, float(clamp_max_duration(value) or 0))
        except (TypeError, ValueError):
            continue  # reported when the settings are resolved
    return longest


def setup(app: Any, config: TriggerConfig | None = None, **overrides: Any) -> Engine:
    """Install celery-trigger on a Celery app; the one line a project adds.

    Example::

        app = Celery("proj", broker="redis://localhost:6379/0")
        ct.setup(app)
    """
    if config is not None and not isinstance(config, TriggerConfig):
        raise ConfigurationError(["config must come from ct.define_config(...)"])
    # The arguments alone, against an empty configuration: bad names or values fail here.
    resolve_settings({}, config, overrides, broker=False)

    def resolver() -> tuple[Settings, Store]:
        settings = resolve_settings(app.conf, config, overrides)
        return settings, _make_store(settings)

    engine: Engine
    broker = _celery.CeleryBroker(app, lambda: engine.store)
    engine = Engine(app, None, None, broker, resolver=resolver)

    def adjust(sender: Any = None, **_: Any) -> None:
        conf = app.conf
        longest = _longest_max_duration(conf, config, overrides)
        _celery.note_changes(app, broker_adjustments(conf, longest))

    previous = _engine_handle.install(engine)
    if previous is not None and previous is not engine:
        _celery.uninstall(previous)
    _celery.install(engine, adjust)
    return engine
