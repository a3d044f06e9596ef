"""Configuration: ``define_config`` and the ``trigger_*`` settings. The only reader of app.conf.

Settings resolve once, when first needed (``resolve_settings``, called by the engine on its
first use, not by ``setup``): explicit ``setup(**overrides)`` beat the ``config`` object,
which beats ``app.conf.trigger_*`` (``CELERY_TRIGGER_*`` under Django), which beats the
defaults below. Every problem found is reported at once in one ``ConfigurationError``.

Celery settings: ``setup`` changes none of the app-wide task settings. What celery-trigger
tasks need (late ack, requeue on a lost worker, STARTED, JSON) is ``TRIGGER_TASK_SETTINGS``,
set on the trigger task class only; ``broker_adjustments`` returns the two broker-wide
changes it still makes (Redis visibility timeout floor, in-memory polling), logged at worker
start.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import ConfigurationError
from .options import (
    RetryOptions,
    clamp_max_duration,
    coerce_retry,
    resolve_machine,
    resolve_ttl,
    to_seconds,
)

ENVIRONMENTS = ("DEVELOPMENT", "STAGING", "PRODUCTION", "PREVIEW")
LOG_LEVELS = ("none", "error", "warn", "info", "debug")
#: The environment variable that overrides ``log_level`` (SEMANTICS §14).
LOG_LEVEL_ENV = "TRIGGER_LOG_LEVEL"


def log_threshold(config_level: str | None) -> str:
    """The run logger's threshold: ``TRIGGER_LOG_LEVEL`` > ``log_level`` > ``"info"``; an
    unknown value counts as ``"info"`` (SEMANTICS §14.1). Example: ``log_threshold("warn")``."""
    level = (os.environ.get(LOG_LEVEL_ENV) or config_level or "info").strip().lower()
    return level if level in LOG_LEVELS else "info"


#: D-1: the policy a project gets when it configures nothing.
BUILTIN_DEFAULT_RETRY = RetryOptions(
    max_attempts=3, factor=2, min_timeout_in_ms=1000, max_timeout_in_ms=10000, randomize=True
)
#: D-5 limits, in bytes.
DEFAULT_MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
DEFAULT_MAX_METADATA_BYTES = 256 * 1024
#: Messages above this carry only the run id; the payload stays in the run record (D-5).
MESSAGE_INLINE_LIMIT_BYTES = 512 * 1024
_UNSET: Any = object()


@dataclass(frozen=True)
class TriggerConfig:
    """Project configuration (``trigger.config.ts``). Build it with ``define_config``."""

    project: str
    dirs: tuple[str, ...] = ()
    retries_default: RetryOptions | None = BUILTIN_DEFAULT_RETRY
    retries_enabled_in_dev: bool = True
    max_duration: int | None = None
    machine: str = "small-1x"
    ttl: float | None = None
    log_level: str = "info"
    environment: str | None = None
    on_start: Callable[..., Any] | None = None
    on_success: Callable[..., Any] | None = None
    on_failure: Callable[..., Any] | None = None
    init: Callable[..., Any] | None = None


def define_config(
    *,
    project: str,
    dirs: Sequence[str] = (),
    retries: Mapping[str, Any] | None = None,
    max_duration: Any = None,
    machine: str | None = None,
    default_machine: str | None = None,
    ttl: Any = None,
    log_level: str = "info",
    environment: str | None = None,
    on_start: Callable[..., Any] | None = None,
    on_success: Callable[..., Any] | None = None,
    on_failure: Callable[..., Any] | None = None,
    init: Callable[..., Any] | None = None,
) -> TriggerConfig:
    """Validate and freeze a project configuration.

    Example: ``ct.define_config(project="proj", dirs=["proj.trigger"], max_duration=3600,
    retries={"default": {"max_attempts": 3}})``. ``default_machine`` is the seed's name for
    ``machine`` (give one of them).
    """
    problems: list[str] = []
    if machine is not None and default_machine is not None and machine != default_machine:
        problems.append("give machine or default_machine (the same setting), not both")
    machine = machine or default_machine or "small-1x"
    if not isinstance(project, str) or not project:
        problems.append("project must be a non-empty string")
    if isinstance(dirs, str) or not all(isinstance(d, str) for d in dirs):
        problems.append("dirs must be a list of importable package names")
    retry_default: RetryOptions | None = BUILTIN_DEFAULT_RETRY
    enabled_in_dev = True
    if retries is not None:
        if not isinstance(retries, Mapping):
            problems.append(
                "retries must be a dict like {'default': {...}, 'enabled_in_dev': True}"
            )
        else:
            unknown = set(retries) - {"default", "enabled_in_dev"}
            if unknown:
                problems.append(f"unknown retries key(s): {', '.join(sorted(unknown))}")
            if "default" in retries:
                try:
                    # D-1: config defaults are merged over the built-in task defaults.
                    retry_default = coerce_retry(retries["default"], RetryOptions())
                except (TypeError, ValueError) as exc:
                    problems.append(f"retries.default: {exc}")
            enabled_in_dev = bool(retries.get("enabled_in_dev", True))
    duration: int | None = None
    if max_duration is not None:
        try:
            if max_duration == 0:
                raise ValueError("max_duration must be positive (omit it for no limit)")
            duration = clamp_max_duration(max_duration)
        except (TypeError, ValueError) as exc:
            problems.append(str(exc))
    try:
        resolve_machine(machine)
    except ValueError as exc:
        problems.append(str(exc))
    ttl_s: float | None = None
    try:
        ttl_s = resolve_ttl(ttl)
    except (TypeError, ValueError) as exc:
        problems.append(str(exc))
    if log_level not in LOG_LEVELS:
        problems.append(f"log_level must be one of {', '.join(LOG_LEVELS)}")
    if environment is not None and environment not in ENVIRONMENTS:
        problems.append(f"environment must be one of {', '.join(ENVIRONMENTS)}")
    for name, hook in (
        ("on_start", on_start),
        ("on_success", on_success),
        ("on_failure", on_failure),
        ("init", init),
    ):
        if hook is not None and not callable(hook):
            problems.append(f"{name} must be callable")
    if problems:
        raise ConfigurationError(problems)
    return TriggerConfig(
        project=project,
        dirs=tuple(dirs),
        retries_default=retry_default,
        retries_enabled_in_dev=enabled_in_dev,
        max_duration=duration,
        machine=machine,
        ttl=ttl_s,
        log_level=log_level,
        environment=environment,
        on_start=on_start,
        on_success=on_success,
        on_failure=on_failure,
        init=init,
    )


@dataclass(frozen=True)
class Settings:
    """Resolved runtime settings (``trigger_*``)."""

    config: TriggerConfig
    redis_url: str = "redis://localhost:6379/0"
    #: Redis Sentinel: the sentinels (``"h:p,h:p"`` or a list) and the master's service name;
    #: when set, the store finds its master through them and ``redis_url`` is not used
    redis_sentinels: Any = None
    redis_master: str = "mymaster"
    store: str = "redis"
    key_prefix: str = "ct"
    environment: str = "PRODUCTION"
    secret_key: str = ""
    base_url: str = "http://localhost:8000"
    wait_threshold: float = 5.0
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_output_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES
    max_metadata_bytes: int = DEFAULT_MAX_METADATA_BYTES
    #: how often an executing run sends its buffered metadata operations (SEMANTICS §8.1)
    metadata_flush_interval: float = 1.0
    lease_seconds: float = 30.0
    timer_poll_interval: float = 0.05
    timer_claim_lease: float = 30.0
    publish_watchdog: float = 300.0
    warm_retry_threshold: float = 30.0
    machine_queues: Mapping[str, str] = field(default_factory=dict)
    cost_rates: Mapping[str, float] = field(default_factory=dict)
    timer_service: bool = True
    #: environment-wide limit on executing runs (SEMANTICS §6.2); None = unlimited
    concurrency_limit: int | None = None
    #: how long a final run, batch or token is kept (``trigger_run_retention``): seconds, a
    #: timedelta or a duration string; None keeps them forever
    run_retention: Any = "30d"
    #: the version this worker serves (``trigger_worker_version``, D-21): runs triggered with
    #: ``version=`` run only on workers serving it; None serves no version
    worker_version: str | None = None

    @property
    def retention_ms(self) -> int | None:
        """``run_retention`` in ms (validated by ``resolve_settings``); None = forever."""
        if self.run_retention is None:
            return None
        return int(to_seconds(self.run_retention, name="trigger_run_retention") * 1000)


_SETTING_NAMES = {f.name for f in fields(Settings)} - {"config"}
_CONFIG_NAMES = {f.name for f in fields(TriggerConfig)} | {"retries", "default_machine"}


def _default_redis_url(broker: Any) -> str:
    if isinstance(broker, str) and broker.startswith(REDIS_SCHEMES):
        return broker
    return "redis://localhost:6379/0"


def _broker_problem(conf: Any, overrides: Mapping[str, Any], store: str) -> str | None:
    """A non-Redis broker and no ``trigger_redis_url``: say so instead of guessing localhost."""
    if store != "redis" or "redis_url" in overrides or conf.get("trigger_redis_url"):
        return None
    if overrides.get("redis_sentinels") or conf.get("trigger_redis_sentinels"):
        return None
    broker = conf.get("broker_url") or "amqp://"
    if isinstance(broker, str) and broker.startswith(REDIS_SCHEMES):
        return None
    scheme = str(broker).split("://", 1)[0] if isinstance(broker, str) else type(broker).__name__
    return (
        f"the broker is {scheme}://, not Redis: set trigger_redis_url to the Redis server "
        "that holds the run records (or trigger_store='memory' for the embedded mode)"
    )


def resolve_settings(
    conf: Any, config: TriggerConfig | None, overrides: Mapping[str, Any], *, broker: bool = True
) -> Settings:
    """Merge overrides > config > ``app.conf.trigger_*`` > defaults into ``Settings``.

    ``broker=False`` skips the broker check (``setup`` validates its own arguments against an
    empty configuration before the app's is read)."""
    problems: list[str] = []
    unknown = set(overrides) - _SETTING_NAMES - _CONFIG_NAMES
    if unknown:
        problems.append(f"unknown setup option(s): {', '.join(sorted(unknown))}")
    config_kwargs = {k: v for k, v in overrides.items() if k in _CONFIG_NAMES}
    if config is None:
        project = (
            config_kwargs.pop("project", None)
            or conf.get("trigger_project")
            or conf.get("main")
            or "celery"
        )
        base: dict[str, Any] = {"project": project}
        for name in (
            "dirs", "retries", "max_duration", "machine", "default_machine", "ttl", "log_level",
        ):  # fmt: skip
            value = conf.get(f"trigger_{name}")
            if value is not None:
                base[name] = value
        base.update(config_kwargs)
        try:
            config = define_config(**base)
        except ConfigurationError as exc:
            problems.extend(exc.problems)
            config = TriggerConfig(project=str(project))
    elif config_kwargs:
        problems.append("pass project options either in config= or as keywords, not both")
    values: dict[str, Any] = {
        "config": config,
        "redis_url": _default_redis_url(conf.get("broker_url")),
    }
    for name in _SETTING_NAMES:
        value = conf.get(f"trigger_{name}")
        if value is not None:
            values[name] = value
    if "trigger_run_retention" in conf and conf.get("trigger_run_retention") is None:
        values["run_retention"] = None  # None is meaningful here: keep forever
    values.update({k: v for k, v in overrides.items() if k in _SETTING_NAMES})
    env = os.environ.get("TRIGGER_ENVIRONMENT")
    if "environment" not in overrides and config.environment:
        values["environment"] = config.environment
    elif env and "environment" not in overrides:
        values["environment"] = env
    settings = Settings(**values)
    if settings.store not in ("redis", "memory"):
        problems.append("trigger_store must be 'redis' or 'memory'")
    elif broker and (problem := _broker_problem(conf, overrides, settings.store)) is not None:
        problems.append(problem)
    if settings.environment not in ENVIRONMENTS:
        problems.append(f"trigger_environment must be one of {', '.join(ENVIRONMENTS)}")
    if (
        not isinstance(settings.key_prefix, str)
        or not settings.key_prefix
        or any(c in settings.key_prefix for c in " {}")
    ):
        problems.append("trigger_key_prefix must be a non-empty string without spaces or braces")
    if settings.secret_key and len(settings.secret_key.encode()) < 32:
        problems.append("trigger_secret_key must be at least 32 bytes (it signs HS256 tokens)")
    for name in (
        "wait_threshold",
        "lease_seconds",
        "timer_poll_interval",
        "timer_claim_lease",
        "warm_retry_threshold",
        "publish_watchdog",
    ):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            problems.append(f"trigger_{name} must be a non-negative number of seconds")
    flush = settings.metadata_flush_interval
    if isinstance(flush, bool) or not isinstance(flush, (int, float)) or flush <= 0:
        problems.append("trigger_metadata_flush_interval must be a positive number of seconds")
    limit = settings.concurrency_limit
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        problems.append(
            "trigger_concurrency_limit must be a positive integer (or None for no limit)"
        )
    for name in ("max_payload_bytes", "max_output_bytes", "max_metadata_bytes"):
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            problems.append(f"trigger_{name} must be a positive integer")
    version = settings.worker_version
    if version is not None and (not isinstance(version, str) or not version):
        problems.append("trigger_worker_version must be a non-empty string")
    try:
        settings.retention_ms  # noqa: B018 (validates)
    except (TypeError, ValueError) as exc:
        problems.append(f"trigger_run_retention: {exc}")
    if problems:
        raise ConfigurationError(problems)
    return settings


def with_overrides(settings: Settings, **changes: Any) -> Settings:
    return replace(settings, **changes)


#: Celery task settings every celery-trigger task uses, whatever the app's defaults: set as
#: attributes of the trigger task class (``_celery/task.py``), never on ``app.conf``, so plain
#: tasks keep Celery's early ack and states. Keys are the app-wide setting names the
#: attributes stand for (the benchmarks apply them app-wide to compare).
TRIGGER_TASK_SETTINGS: dict[str, Any] = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "task_track_started": True,
    "task_serializer": "json",
}
#: Broker URL schemes whose server can hold the run store when ``trigger_redis_url`` is unset.
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
#: The visibility timeout floor of a Redis broker (s), below the longest max_duration + margin.
VISIBILITY_TIMEOUT_FLOOR_S = 3600.0
VISIBILITY_MARGIN_S = 300.0


def broker_adjustments(conf: Any, longest_max_duration: float | None) -> dict[str, Any]:
    """Apply the broker-wide changes celery-trigger needs where the user set nothing; return
    them (``{setting: value}``) so the worker can log them once.

    - a Redis broker's ``visibility_timeout`` outlasts the longest attempt (else a long run
      gets a duplicate delivery mid-attempt);
    - the in-memory transport is polled every 100 ms (embedded mode's interactive use).
    """
    changed: dict[str, Any] = {}
    broker = conf.get("broker_url") or ""
    if not isinstance(broker, str):
        return changed
    options = dict(conf.get("broker_transport_options") or {})
    if broker.startswith("memory://") and "polling_interval" not in options:
        options["polling_interval"] = 0.1
        changed["broker_transport_options.polling_interval"] = 0.1
    if broker.startswith(("redis://", "rediss://")) and "visibility_timeout" not in options:
        floor = max(VISIBILITY_TIMEOUT_FLOOR_S, (longest_max_duration or 0) + VISIBILITY_MARGIN_S)
        options["visibility_timeout"] = floor
        changed["broker_transport_options.visibility_timeout"] = floor
    if changed:
        conf["broker_transport_options"] = options
    return changed
