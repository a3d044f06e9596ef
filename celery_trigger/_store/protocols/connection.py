"""Where the store lives and its connection: location, ping, close.

Invariants: ``location`` is None unless the store is on a Redis server reachable by host.
"""

from __future__ import annotations

from typing import Protocol

from ..types import ServerLocation


class ConnectionStore(Protocol):
    """Where the store lives and its connection: location, ping, close."""

    def location(self) -> ServerLocation | None:
        """The Redis server the store uses, None when it is not on one (or a unix socket)."""
        ...

    def ping(self) -> bool:
        """True when the store answers (raises ``StoreUnavailableError`` when it cannot)."""
        ...

    def close(self) -> None:
        """Release the store's connections."""
        ...
