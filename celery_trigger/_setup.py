"""``setup(app)``: resolve settings, open the store, build the engine, wire it into Celery.

The ``Engine`` returned (``_engine/engine.py``) is the process-wide handle: every module
reaches the store and the broker through ``current()``. Calling ``setup`` again (another
app, another test) replaces it.
"""

from __future__ import annotations

import logging
from typing import Any

from . import _celery
from ._config import Settings, TriggerConfig, apply_safe_defaults, resolve_settings
from ._engine import engine as _engine_handle
from ._engine import registry
from ._engine.engine import Engine, current, current_or_none, reset
from ._store.base import Store
from ._store.memory import MemoryStore
from ._store.redis import RedisStore
from .errors import ConfigurationError

logger = logging.getLogger("celery_trigger")

#: The engine handle's former name (``setup`` returns an ``Engine``).
Trigger = Engine

__all__ = ["Engine", "Trigger", "current", "current_or_none", "reset", "setup"]


def _make_store(settings: Settings) -> Store:
    if settings.store == "memory":
        return MemoryStore(prefix=settings.key_prefix)
    return RedisStore(settings.redis_url, prefix=settings.key_prefix)


def setup(app: Any, config: TriggerConfig | None = None, **overrides: Any) -> Engine:
    """Install celery-trigger on a Celery app; the one line a project adds.

    Example::

        app = Celery("proj", broker="redis://localhost:6379/0")
        ct.setup(app)
    """
    if config is not None and not isinstance(config, TriggerConfig):
        raise ConfigurationError(["config must come from ct.define_config(...)"])
    settings = resolve_settings(app.conf, config, overrides)
    store = _make_store(settings)
    longest = max((d.max_duration or 0 for d in registry.all_definitions()), default=0)
    apply_safe_defaults(app.conf, max(longest, settings.config.max_duration or 0))
    engine = Engine(app, settings, store, _celery.CeleryBroker(app, store))
    previous = _engine_handle.install(engine)
    if previous is not None and previous is not engine:
        _celery.uninstall(previous)
    _celery.install(engine)
    return engine
