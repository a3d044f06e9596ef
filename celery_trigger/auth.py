"""Public access tokens: HS256 JWTs signed with ``trigger_secret_key`` (SEMANTICS §12.2).

Run handles carry a token scoped to ``read:runs:<id>`` that lasts one hour (decision D-4);
``create_public_token`` defaults to 15 minutes. Without a secret key no token is issued
(handles carry ``None``), because an unsigned token would be worthless to a server.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import jwt

from .options import to_seconds

RUN_HANDLE_TTL_S = 3600
DEFAULT_TOKEN_TTL = "15m"


def _sign(secret: str, scopes: Sequence[str], ttl_s: float, **claims: Any) -> str:
    now = int(time.time())
    body = {"scopes": list(scopes), "iat": now, "exp": now + int(ttl_s), **claims}
    return jwt.encode(body, secret, algorithm="HS256")


def run_handle_token(engine: Any, run_id: str) -> str | None:
    secret = engine.settings.secret_key
    if not secret:
        return None
    return _sign(secret, [f"read:runs:{run_id}"], RUN_HANDLE_TTL_S)


def batch_handle_token(engine: Any, batch_id: str) -> str | None:
    secret = engine.settings.secret_key
    if not secret:
        return None
    return _sign(secret, [f"read:batch:{batch_id}"], RUN_HANDLE_TTL_S)


def create_public_token(
    *,
    scopes: Mapping[str, Any] | Sequence[str],
    expiration_time: str | int | float = DEFAULT_TOKEN_TTL,
) -> str:
    """Sign a token for a browser or another service.

    Example: ``ct.auth.create_public_token(scopes=["read:runs:run_abc"], expiration_time="1h")``.
    """
    from ._setup import current

    secret = current().settings.secret_key
    if not secret:
        raise ValueError("set trigger_secret_key to issue public access tokens")
    if isinstance(scopes, Mapping):
        flat: list[str] = []
        for action, resources in scopes.items():
            for resource, ids in (resources or {}).items():
                if ids is True:
                    flat.append(f"{action}:{resource}")
                else:
                    flat.extend(
                        f"{action}:{resource}:{i}" for i in ([ids] if isinstance(ids, str) else ids)
                    )
        scopes = flat
    return _sign(secret, list(scopes), to_seconds(expiration_time, name="expiration_time"))


def decode(token: str, secret: str) -> dict[str, Any]:
    """Verify signature and expiry; return the claims (raises ``jwt.InvalidTokenError``)."""
    claims: dict[str, Any] = jwt.decode(token, secret, algorithms=["HS256"])
    return claims
