"""The Redis side of every store operation: the client, the Lua scripts, error wrapping.

``RedisBase`` holds the connection, loads every script of ``../lua/`` (each prefixed with
the vocabulary, ``_vocab.lua_prelude``, and with its ``-- #include`` lines filled in) and the
helpers the concern mixins share. The only package that imports ``redis`` is this one.

Invariant: no caller ever sees a redis-py exception. ``wrap_errors`` is applied to the
composed ``RedisStore`` (and ``RedisListener``) and wraps *every* public method, inherited
ones included, so an operation added to any mixin is covered without being listed anywhere.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any, TypeVar

import redis

from ..._keys import Keys
from ..._vocab import lua_prelude
from ...errors import StoreUnavailableError
from ..types import IdempotencyKey, Record, ServerLocation
from .connect import is_sentinel_url, make_client
from .events import MAX_STALE_RETRIES, IdentityCache, event_block, stale_identity

T = TypeVar("T")
#: A script argument (redis-py encodes each one as a string).
ScriptArg = str | int | float
#: A script or command reply: redis-py leaves replies untyped (with ``decode_responses``,
#: strings, integers and nested lists of them).
Reply = Any
#: Marks a method ``wrap_errors`` has wrapped (tests check every public method has it).
WRAPPED = "__store_errors_wrapped__"
_INCLUDE = "-- #include "
#: The package whose ``lua/`` directory holds the scripts (``celery_trigger._store``).
_LUA_PACKAGE = __name__.rsplit(".", 2)[0]
#: Every script RedisStore runs (``lua/<name>.lua``); ``slots``, ``events`` and
#: ``timer_wake`` are includes.
SCRIPTS = (
    "create_run",
    "claim_attempt",
    "finish_attempt",
    "claim_timers",
    "timers_add",
    "transition",
    "renew_lease",
    "park",
    "notify",
    "wake",
    "journal_append",
    "token_create",
    "token_complete",
    "schedule_put",
    "schedule_advance",
    "schedule_delete",
    "metadata_apply",
    "tags_add",
    "idem_clear",
    "slot_release",
    "slot_reap",
    "slot_join",
    "stream_append",
    "log_append",
    "retire_run",
    "batch_put",
)


def _wrapped(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except redis.RedisError as exc:
            raise StoreUnavailableError(f"Redis error in {fn.__name__}: {exc}") from exc

    setattr(inner, WRAPPED, True)
    return inner


def wrap_errors(cls: type[T]) -> type[T]:
    """Class decorator: every public method of ``cls`` (inherited ones too) turns
    ``redis.RedisError`` into ``StoreUnavailableError``."""
    for name in dir(cls):
        if name.startswith("_"):
            continue
        attr = inspect.getattr_static(cls, name)
        if inspect.isfunction(attr) and not getattr(attr, WRAPPED, False):
            setattr(cls, name, _wrapped(attr))
    return cls


def include(text: str, read: Callable[[str], str]) -> str:
    """Replace each ``-- #include <lib>`` line of a script with ``lua/<lib>.lua``."""
    return (
        "\n".join(
            read(line[len(_INCLUDE) :].strip()) if line.startswith(_INCLUDE) else line
            for line in text.splitlines()
        )
        + "\n"
    )


def _read(name: str) -> str:
    return resources.files(_LUA_PACKAGE).joinpath("lua").joinpath(f"{name}.lua").read_text("utf-8")


def load_script(name: str) -> str:
    """The script's text: the vocabulary prelude, then the script with its includes."""
    return lua_prelude() + include(_read(name), _read)


def pairs(record: list[str], start: int = 0) -> Record:
    """A ``[field, value, ...]`` reply (from ``start``) as a record."""
    it = iter(record[start:])
    return dict(zip(it, it, strict=False))


def scored(rows: Any) -> list[tuple[str, int]]:
    """``(member, score)`` rows of a ``withscores`` range, scores as integer ms."""
    return [(str(member), int(score)) for member, score in rows]


def flatten(fields: dict[str, str]) -> list[str]:
    """``{field: value}`` as the ``field, value, ...`` arguments of a script."""
    out: list[str] = []
    for key, value in fields.items():
        out.append(key)
        out.append(value)
    return out


class RedisBase:
    """The client, the scripts and the helpers every concern mixin uses."""

    def __init__(self, url: str, *, prefix: str = "ct") -> None:
        self.url = url
        #: the key names this store uses (tests and tools; not part of ``Store``)
        self.keys = Keys(prefix)
        self._identities = IdentityCache()
        # Any: with decode_responses every reply is str, which redis-py's types cannot say
        self._client: Any = make_client(url)  # a server URL or a Sentinel URL (connect.py)
        self._scripts: dict[str, Any] = {
            name: self._client.register_script(load_script(name)) for name in SCRIPTS
        }

    def _evalrun(
        self,
        name: str,
        run_id: str,
        keys: list[str],
        args: list[ScriptArg],
        *,
        extra_tags: Sequence[str] = (),
    ) -> Reply:
        """Run a script that emits ``run_id``'s events (``lua/events.lua``): its event keys
        come from the identity cache, and a stale reply is retried with the record's."""
        identity = self._identities.get(run_id)
        for _ in range(MAX_STALE_RETRIES):
            ev_keys, spec = event_block(self.keys, run_id, identity, extra_tags)
            try:
                return self._scripts[name](keys=[*keys, *ev_keys], args=[*args, spec])
            except redis.ResponseError as exc:
                fresh = stale_identity(str(exc))
                if fresh is None:
                    raise
                identity = fresh
                self._identities.put(run_id, fresh)
        raise StoreUnavailableError(f"{name}: the tags of run {run_id} kept changing")

    def _page(self, key: str, before: tuple[int, str] | None, count: int) -> list[tuple[str, int]]:
        """Newest-first page of a creation-time index, strictly after the cursor."""
        if count <= 0:
            return []
        if before is None:
            return scored(
                self._client.zrevrangebyscore(
                    key, "+inf", "-inf", start=0, num=count, withscores=True
                )
            )
        # Members sharing the cursor's score (a batch is created in one ms) sort by member
        # descending; those at or above the cursor can fill any fixed-size page, so keep
        # paging until ``count`` rows pass the filter or the range runs out.
        out: list[tuple[str, int]] = []
        offset, page = 0, count + 50
        while len(out) < count:
            rows = scored(
                self._client.zrevrangebyscore(
                    key, before[0], "-inf", start=offset, num=page, withscores=True
                )
            )
            out.extend(
                (m, s) for m, s in rows if s < before[0] or (s == before[0] and m < before[1])
            )
            if len(rows) < page:
                break
            offset += page
        return out[:count]

    def _idem_name(self, key: IdempotencyKey | None) -> str:
        """The key name of a run idempotency key ("" for none)."""
        return self.keys.idempotency(key.task_id, key.key) if key else ""

    def location(self) -> ServerLocation | None:
        kw = self._client.connection_pool.connection_kwargs
        if "path" in kw or is_sentinel_url(self.url):  # no fixed host to compare with a broker
            return None
        ssl = "ssl" in str(self._client.connection_pool.connection_class).lower()
        return ServerLocation(
            host=str(kw.get("host")),
            port=int(kw.get("port") or 6379),
            db=int(kw.get("db") or 0),
            password=kw.get("password") or None,
            ssl=ssl,
        )

    def ping(self) -> bool:
        return bool(self._client.ping())

    def close(self) -> None:
        self._client.close()
