"""RedisStore: the ``Store`` protocols on Redis, one mixin per concern.

``client.py`` holds the connection, the scripts (``../lua/*.lua``, each header states its
KEYS, ARGV and reply) and ``wrap_errors``; ``events.py`` the event keys every run-changing
script is given. ``RedisStore`` is composed of the concern mixins and wrapped as a whole, so
no public method can leak a redis-py exception. Example:
``RedisStore("redis://localhost:6379/0", prefix="ct")``.
"""

from __future__ import annotations

from .client import RedisBase, wrap_errors
from .durable import RedisDurable
from .idempotency import RedisIdempotency
from .logs import RedisLogs
from .metadata import RedisMetadata
from .realtime import RedisListener, RedisRealtime
from .retention import RedisRetention
from .runs import RedisRuns
from .schedules import RedisSchedules
from .slots import RedisSlots
from .tasks import RedisTasks
from .timers import RedisTimers
from .tokens import RedisTokens


@wrap_errors
class RedisStore(
    RedisRuns,
    RedisDurable,
    RedisTokens,
    RedisMetadata,
    RedisIdempotency,
    RedisSlots,
    RedisTimers,
    RedisSchedules,
    RedisRealtime,
    RedisLogs,
    RedisTasks,
    RedisRetention,
    RedisBase,
):
    """Run state in Redis. Example: ``RedisStore("redis://localhost:6379/0", prefix="ct")``."""


__all__ = ["RedisListener", "RedisStore"]
