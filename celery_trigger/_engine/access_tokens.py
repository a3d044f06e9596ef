"""Single use of one-time public access tokens (SEMANTICS §12.2).

A one-time token is spent by recording its ``jti`` in the store with a TTL that outlives the
token: the first ``spend`` wins in every process sharing the store, and the record expires
once the token could not be accepted anyway. Signing and verifying tokens is ``auth.py``'s.
"""

from __future__ import annotations

from .engine import Engine


def spend(engine: Engine, jti: str, ttl_ms: int) -> bool:
    """Mark token ``jti`` used for ``ttl_ms``; False when it was used before."""
    return engine.store.mark_token_used(jti, ttl_ms)
