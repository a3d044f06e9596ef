"""The store's redis-py client: a plain server URL, or a master found through Redis Sentinel.

A Sentinel URL names the sentinels and the master's service name::

    sentinel://[:password@]host:port[,host:port...]/<master>[/<db>]

(``redis+sentinel://`` is accepted too). The password, if any, is the master's; the sentinels
are asked without one. The client is redis-py's ``Sentinel.master_for``: every new connection
asks the sentinels where the master is, and a connection to a server that stopped being the
master fails (``StoreUnavailableError`` to the engine, which retries, requeues or waits like
after any store blip) and is replaced by one to the promoted replica.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

import redis
from redis.sentinel import Sentinel

SENTINEL_SCHEMES = ("sentinel://", "redis+sentinel://")
#: how long finding the master or connecting may take before the operation fails (s)
CONNECT_TIMEOUT_S = 2.0


def is_sentinel_url(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEMES)


def sentinel_url(sentinels: Any, master: str) -> str:
    """A Sentinel URL from ``trigger_redis_sentinels`` (``"h:p,h:p"``, or a list of
    ``"h:p"`` strings or ``(host, port)`` pairs) and ``trigger_redis_master``."""
    if isinstance(sentinels, str):
        items: Iterable[Any] = sentinels.split(",")
    else:
        items = sentinels
    hosts = []
    for item in items:
        if isinstance(item, (tuple, list)):
            hosts.append(f"{item[0]}:{int(item[1])}")
        elif str(item).strip():
            hosts.append(str(item).strip())
    if not hosts:
        raise ValueError("trigger_redis_sentinels names no sentinel")
    return f"sentinel://{','.join(hosts)}/{master}"


def parse_sentinel_url(url: str) -> tuple[list[tuple[str, int]], str, int, str | None]:
    """``(sentinels, master, db, password)`` of a Sentinel URL; ``ValueError`` if malformed."""
    rest = url.split("://", 1)[1]
    netloc, _, path = rest.partition("/")
    password: str | None = None
    if "@" in netloc:
        auth, netloc = netloc.rsplit("@", 1)
        password = unquote(auth.split(":", 1)[1] if ":" in auth else auth) or None
    sentinels = []
    for item in netloc.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"{url!r}: each sentinel is host:port")
        sentinels.append((host.strip("[]"), int(port)))
    parts = [p for p in path.split("/") if p]
    if not parts or len(parts) > 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError(f"{url!r}: expected sentinel://host:port[,host:port]/<master>[/<db>]")
    return sentinels, unquote(parts[0]), int(parts[1]) if len(parts) == 2 else 0, password


def make_client(url: str) -> Any:
    """The decoded-responses client for ``url`` (a ``redis://``-style URL or a Sentinel URL)."""
    if not is_sentinel_url(url):
        return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30)
    sentinels, master, db, password = parse_sentinel_url(url)
    # timeouts for the sentinels only: the master's connections keep redis-py's defaults
    timeouts = {"socket_timeout": CONNECT_TIMEOUT_S, "socket_connect_timeout": CONNECT_TIMEOUT_S}
    sentinel = Sentinel(sentinels, sentinel_kwargs=timeouts)  # type: ignore[no-untyped-call]
    return sentinel.master_for(  # type: ignore[no-untyped-call]
        master,
        db=db,
        password=password,
        decode_responses=True,
        health_check_interval=30,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
    )
