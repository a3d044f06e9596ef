"""The engine handle: settings, store and broker of one installed app, and the process-wide
current engine.

``setup(app)`` (``_setup.py``) builds an ``Engine`` and installs it; every engine module
reaches the store and the broker through ``current()``. Settings and store are resolved on
first use (``resolver``), not by ``setup``: settings given after ``setup`` (``app.conf``,
``config_from_object``, Django) count, and a process that never touches celery-trigger never
reads them. Installing again (another app,
another test) replaces it. The engine never touches Celery: it publishes through the
``Broker`` interface (``_engine/dispatch.py``) that the Celery layer provides, and keeps the
host app only as an opaque handle for the layers above.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
import time
from collections.abc import Callable
from typing import Any

from .._config import Settings, TriggerConfig
from .._store.base import Store
from ..errors import ConfigurationError
from .broker import Broker
from .watchdog import Watchdog

#: How long a task definition read from the store is trusted (s).
TASK_DEF_CACHE_S = 5.0


class Engine:
    """The engine bound to one app: settings, store, broker and the attempt watchdog."""

    def __init__(
        self,
        app: Any,
        settings: Settings | None,
        store: Store | None,
        broker: Broker,
        *,
        resolver: Callable[[], tuple[Settings, Store]] | None = None,
    ) -> None:
        if (settings is None or store is None) and resolver is None:
            raise ValueError("an Engine needs settings and a store, or a resolver for both")
        self.app = app  # opaque here: only the Celery layer and public modules use it
        self._settings = settings
        self._store = store
        self._resolver = resolver
        self._resolving = threading.Lock()
        self.broker = broker
        self._watchdog: Watchdog | None = None
        self._task_defs: dict[str, tuple[float, str | None]] = {}
        self._closers: list[Callable[[], None]] = []

    def _resolve(self) -> None:
        with self._resolving:
            if self._settings is None or self._store is None:
                assert self._resolver is not None
                self._settings, self._store = self._resolver()

    @property
    def settings(self) -> Settings:
        """The resolved settings (resolved on first use; raises ``ConfigurationError``)."""
        if self._settings is None:
            self._resolve()
        assert self._settings is not None
        return self._settings

    @property
    def store(self) -> Store:
        """The run store (opened on first use)."""
        if self._store is None:
            self._resolve()
        assert self._store is not None
        return self._store

    @property
    def resolved(self) -> bool:
        """Whether settings and store exist yet (closing an unused engine opens nothing)."""
        return self._store is not None

    @property
    def config(self) -> TriggerConfig:
        return self.settings.config

    @property
    def watchdog(self) -> Watchdog:
        """Lease heartbeats, max_duration and cancel for attempts in this process."""
        if self._watchdog is None:
            self._watchdog = Watchdog(self.store, self.settings.lease_seconds)
        return self._watchdog

    def stored_task_def(self, task_id: str) -> str | None:
        """The definition a worker stored for ``task_id`` (JSON), cached for a few seconds."""
        cached = self._task_defs.get(task_id)
        if cached is None or cached[0] < time.monotonic():
            cached = (time.monotonic() + TASK_DEF_CACHE_S, self.store.get_task_def(task_id))
            self._task_defs[task_id] = cached
        return cached[1]

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

    def on_close(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` when the engine closes (the Celery layer unbinds itself)."""
        self._closers.append(fn)

    def close(self) -> None:
        for fn in self._closers:
            fn()
        self._closers.clear()
        if self._store is not None:
            self._store.close()


_current: Engine | None = None
_lock = threading.Lock()


def install(engine: Engine) -> Engine | None:
    """Make ``engine`` the current one; return the one it replaced."""
    global _current
    with _lock:
        previous, _current = _current, engine
    return previous


def current() -> Engine:
    """The installed engine; raises ``ConfigurationError`` before ``setup``."""
    engine = _current
    if engine is None:
        raise ConfigurationError(["celery_trigger.setup(app) has not been called"])
    return engine


def current_or_none() -> Engine | None:
    return _current


def reset() -> None:
    """Forget the installed engine and close it (tests)."""
    global _current
    with _lock:
        engine, _current = _current, None
    if engine is not None:
        engine.close()


#: The name engine modules that also define a ``current`` of their own import it under.
current_engine = current
