"""``setup(app)``: resolve settings once, open the store, install the worker integration.

The ``Trigger`` object returned is the process-wide engine handle: every public module
reaches the store and the app through ``current()``. Calling ``setup`` again (another app,
another test) replaces it.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import threading
from typing import Any

from . import _definition
from ._config import Settings, TriggerConfig, apply_safe_defaults, resolve_settings
from ._store.base import Store
from .errors import ConfigurationError

logger = logging.getLogger("celery_trigger")

_current: Trigger | None = None
_lock = threading.Lock()


class Trigger:
    """The engine bound to one Celery app: settings, store and the worker integration."""

    def __init__(self, app: Any, settings: Settings, store: Store) -> None:
        self.app = app
        self.settings = settings
        self.store = store
        self._watchdog: Any = None
        self._enqueuer: Any = None
        self._task_def_cache: dict[str, tuple[float, str | None]] = {}

    @property
    def config(self) -> TriggerConfig:
        return self.settings.config

    @property
    def enqueuer(self) -> Any:
        """The direct-enqueue fast path (``_broker.DirectEnqueuer``), built on first use."""
        if self._enqueuer is None:
            from ._broker import DirectEnqueuer

            self._enqueuer = DirectEnqueuer(self.app, self.store)
        return self._enqueuer

    @property
    def watchdog(self) -> Any:
        if self._watchdog is None:
            from ._engine.watchdog import Watchdog

            self._watchdog = Watchdog(self.store, self.settings.lease_seconds)
        return self._watchdog

    def discover(self) -> list[str]:
        """Import every module of the packages in ``config.dirs``; return the module names."""
        imported: list[str] = []
        for package_name in self.config.dirs:
            package = importlib.import_module(package_name)
            imported.append(package_name)
            for info in pkgutil.walk_packages(
                getattr(package, "__path__", []), prefix=f"{package_name}."
            ):
                importlib.import_module(info.name)
                imported.append(info.name)
        return imported

    def close(self) -> None:
        from . import _runtime

        _runtime.uninstall(self)
        self.store.close()


def _make_store(settings: Settings) -> Store:
    if settings.store == "memory":
        from ._store.memory import MemoryStore

        return MemoryStore(prefix=settings.key_prefix)
    from ._store.redis import RedisStore

    return RedisStore(settings.redis_url, prefix=settings.key_prefix)


def setup(app: Any, config: TriggerConfig | None = None, **overrides: Any) -> Trigger:
    """Install celery-trigger on a Celery app; the one line a project adds.

    Example::

        app = Celery("proj", broker="redis://localhost:6379/0")
        ct.setup(app)
    """
    from . import _runtime

    global _current
    if config is not None and not isinstance(config, TriggerConfig):
        raise ConfigurationError(["config must come from ct.define_config(...)"])
    settings = resolve_settings(app.conf, config, overrides)
    store = _make_store(settings)
    longest = max((d.max_duration or 0 for d in _definition.all_definitions()), default=0)
    apply_safe_defaults(app.conf, max(longest, settings.config.max_duration or 0))
    trigger = Trigger(app, settings, store)
    with _lock:
        previous, _current = _current, trigger
    if previous is not None and previous is not trigger:
        from . import _runtime as rt

        rt.uninstall(previous)
    _runtime.install(trigger)
    return trigger


def current() -> Trigger:
    """The engine installed by ``setup``; raises ``ConfigurationError`` before it."""
    trigger = _current
    if trigger is None:
        raise ConfigurationError(["celery_trigger.setup(app) has not been called"])
    return trigger


def current_or_none() -> Trigger | None:
    return _current


def reset() -> None:
    """Forget the installed engine (tests)."""
    global _current
    with _lock:
        trigger, _current = _current, None
    if trigger is not None:
        trigger.close()
