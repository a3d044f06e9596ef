"""Public access tokens: HS256 JWTs signed with ``trigger_secret_key`` (SEMANTICS §12.2).

A token carries a list of scope strings ``action:resource[:id]`` and grants exactly their union;
a token without scopes can do nothing. ``read:runs`` (no id) covers every run. A ``write``
scope does not imply ``read`` (as upstream). The id is everything after the second colon, so
tags and ids may themselves contain colons.

Invariants of every token issued here: ``iss`` and ``aud`` are ``"celery-trigger"``, ``exp``
and ``iat`` are Unix seconds, ``jti`` is a random id, ``scopes`` is a list of strings; a
single-use trigger token also has ``one_time: true`` and ``verify(..., use=True)`` accepts it
once (``_engine/access_tokens.py``: the ``jti`` is recorded, expiring with the token, so every
process sharing the Redis agrees).

Run handles carry a token scoped to ``read:runs:<id>`` that lasts one hour (decision D-4), batch
handles ``read:batch:<id>``; ``create_public_token`` defaults to 15 minutes. Without a secret key
handles carry ``None``, because an unsigned token would be worthless to a server.
"""

from __future__ import annotations

import secrets as _secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import jwt

from ._engine import access_tokens
from ._engine.engine import Engine, current
from .errors import AuthenticationError, ConfigurationError, PermissionDeniedError
from .options import to_seconds
from .result import Run

RUN_HANDLE_TTL_S = 3600
DEFAULT_TOKEN_TTL = "15m"
ISSUER = "celery-trigger"
AUDIENCE = "celery-trigger"
ONE_TIME_CLAIM = "one_time"

#: which resources each action may name in a scope
RESOURCES: dict[str, frozenset[str]] = {
    "read": frozenset({"runs", "tasks", "tags", "batch", "waitpoints", "inputStreams"}),
    "write": frozenset({"runs", "tasks", "tags", "batch", "waitpoints", "inputStreams"}),
    "trigger": frozenset({"tasks", "options"}),
    "batchTrigger": frozenset({"tasks"}),
}
ALL_RESOURCES = frozenset().union(*RESOURCES.values())

Expiration = str | int | float | datetime | timedelta

__all__ = [
    "create_batch_trigger_public_token",
    "create_public_token",
    "create_trigger_public_token",
    "flatten_scopes",
    "permits",
    "verify",
]


# --- scopes ----------------------------------------------------------------------------------


def _check_action_resource(action: Any, resource: Any, where: str) -> None:
    if action not in RESOURCES:
        raise ValueError(
            f"{where}: unknown action {action!r} (expected one of {sorted(RESOURCES)})"
        )
    if resource not in RESOURCES[action]:
        raise ValueError(
            f"{where}: unknown resource {resource!r} for {action!r} "
            f"(expected one of {sorted(RESOURCES[action])})"
        )


def _ids(value: Any, where: str) -> list[str] | None:
    """The ids a scope-object value grants: None for ``True`` (all), [] for None/False."""
    if value is True:
        return None
    if value is None or value is False:
        return []
    items = [value] if isinstance(value, str) else value
    if isinstance(items, (bytes, Mapping)) or not isinstance(items, Iterable):
        raise TypeError(
            f"{where} must be True, an id string or a list of id strings, "
            f"not {type(value).__name__}"
        )
    out: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"{where} ids must be strings, not {type(item).__name__}")
        if not item.strip():
            raise ValueError(f"{where} has an empty id")
        out.append(item)
    return out


def parse_scope(scope: Any) -> tuple[str, str, str | None]:
    """Split and validate one scope string: ``"read:runs:run_1"`` → ``("read", "runs", "run_1")``.

    Example: ``parse_scope("read:tags:user:42") == ("read", "tags", "user:42")``.
    """
    if not isinstance(scope, str):
        raise TypeError(
            f"scope must be a string 'action:resource[:id]', not {type(scope).__name__}"
        )
    parts = scope.split(":", 2)
    if len(parts) < 2:
        raise ValueError(f"scope {scope!r} is not 'action:resource[:id]'")
    _check_action_resource(parts[0], parts[1], f"scope {scope!r}")
    if len(parts) == 3 and not parts[2].strip():
        raise ValueError(f"scope {scope!r} has an empty id")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def flatten_scopes(scopes: Mapping[str, Any] | Sequence[str]) -> list[str]:
    """Validate ``scopes`` (a scope object or a list of scope strings) and return the strings,
    deduplicated in first-seen order.

    Example: ``flatten_scopes({"read": {"runs": ["r1", "r2"], "tags": True}})
    == ["read:runs:r1", "read:runs:r2", "read:tags"]``.
    """
    flat: list[str] = []
    if isinstance(scopes, Mapping):
        for action, resources in scopes.items():
            if resources is None:
                continue
            if not isinstance(resources, Mapping):
                raise TypeError(
                    f"scopes[{action!r}] must be a mapping of resource to ids, "
                    f"not {type(resources).__name__}"
                )
            for resource, value in resources.items():
                where = f"scopes[{action!r}][{resource!r}]"
                _check_action_resource(action, resource, where)
                ids = _ids(value, where)
                if ids is None:
                    flat.append(f"{action}:{resource}")
                else:
                    flat.extend(f"{action}:{resource}:{i}" for i in ids)
    elif isinstance(scopes, (str, bytes)) or not isinstance(scopes, Iterable):
        raise TypeError(
            "scopes must be a mapping like {'read': {'runs': ['run_1']}} or a list of scope "
            f"strings like ['read:runs:run_1'], not {type(scopes).__name__}"
        )
    else:
        for scope in scopes:
            parse_scope(scope)
            flat.append(scope)
    return list(dict.fromkeys(flat))


def _candidates(resource: str | Run) -> dict[str, list[str]]:
    """What a request touches, as resource type → ids (an empty list: the whole type)."""
    if isinstance(resource, Run):
        found: dict[str, list[str]] = {"runs": [resource.id], "tasks": [resource.task_identifier]}
        if resource.tags:  # "read:tags" (every tag) covers tagged runs only
            found["tags"] = list(resource.tags)
        if resource.batch_id:
            found["batch"] = [resource.batch_id]
        return found
    if not isinstance(resource, str):
        raise TypeError(
            "resource must be 'type:id' (e.g. 'runs:run_1') or a Run, "
            f"not {type(resource).__name__}"
        )
    rtype, sep, rid = resource.partition(":")
    if rtype not in ALL_RESOURCES:
        raise ValueError(
            f"resource {resource!r}: unknown type {rtype!r} "
            f"(expected one of {sorted(ALL_RESOURCES)})"
        )
    if sep and not rid.strip():
        raise ValueError(f"resource {resource!r} has an empty id")
    return {rtype: [rid] if sep else []}


def permits(claims: Mapping[str, Any], *, action: str, resource: str | Run) -> bool:
    """Whether verified ``claims`` grant ``action`` on ``resource`` (no signature check here).

    A Run is covered by a scope on its id, its task, its batch or any one of its tags (RT-7).
    Example: ``permits(claims, action="read", resource="tags:user_42")``.
    """
    if action not in RESOURCES:
        raise ValueError(f"unknown action {action!r} (expected one of {sorted(RESOURCES)})")
    scopes = set(claims.get("scopes") or ())
    for rtype, ids in _candidates(resource).items():
        if f"{action}:{rtype}" in scopes:
            return True
        if any(f"{action}:{rtype}:{i}" in scopes for i in ids):
            return True
    return False


# --- signing ---------------------------------------------------------------------------------


def _sign_until(secret: str, scopes: Sequence[str], exp: int, **claims: Any) -> str:
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(time.time()),
        "exp": exp,
        "jti": _secrets.token_urlsafe(16),
        "scopes": list(scopes),
        **claims,
    }
    return jwt.encode(body, secret, algorithm="HS256")


def _sign(secret: str, scopes: Sequence[str], ttl_s: float, **claims: Any) -> str:
    return _sign_until(secret, scopes, int(time.time()) + int(ttl_s), **claims)


def _expires_at(value: Any) -> int:
    """Unix seconds at which a token made now with ``expiration_time=value`` expires."""
    now = time.time()
    if isinstance(value, bool):
        raise TypeError("expiration_time must be a time span string, a datetime or a Unix time")
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("expiration_time datetime must be timezone-aware")
        at = value.timestamp()
    elif isinstance(value, (int, float)):
        at = float(value)
        if at != at or at in (float("inf"), float("-inf")):
            raise ValueError(f"expiration_time must be a finite Unix time, got {value!r}")
    elif isinstance(value, (str, timedelta)):
        at = now + to_seconds(value, name="expiration_time")
    else:
        raise TypeError(
            "expiration_time must be a time span string ('15m', '1hr', '2d'), a timedelta, "
            f"an aware datetime or a Unix time in seconds, not {type(value).__name__}"
        )
    exp = int(at)
    if exp <= now:
        hint = (
            " (a number is an absolute Unix time; pass '15m' or a timedelta for a span)"
            if isinstance(value, (int, float))
            else ""
        )
        raise ValueError(f"expiration_time {value!r} is not in the future{hint}")
    return exp


def _engine(engine: Engine | None) -> Engine:
    return engine if engine is not None else current()


def _secret(engine: Engine) -> str:
    secret: str | None = engine.settings.secret_key
    if not secret:
        raise ConfigurationError(["set trigger_secret_key to issue or verify public access tokens"])
    return secret


def run_handle_token(engine: Engine, run_id: str) -> str | None:
    """The ``public_access_token`` of a run handle (``read:runs:<id>``, 1 h), None without key."""
    secret = engine.settings.secret_key
    if not secret:
        return None
    return _sign(secret, [f"read:runs:{run_id}"], RUN_HANDLE_TTL_S)


def batch_handle_token(engine: Engine, batch_id: str) -> str | None:
    """The ``public_access_token`` of a batch handle (``read:batch:<id>``, 1 h)."""
    secret = engine.settings.secret_key
    if not secret:
        return None
    return _sign(secret, [f"read:batch:{batch_id}"], RUN_HANDLE_TTL_S)


def create_public_token(
    *,
    scopes: Mapping[str, Any] | Sequence[str],
    expiration_time: Expiration = DEFAULT_TOKEN_TTL,
    engine: Engine | None = None,
) -> str:
    """Sign a token for a browser or another service; it grants exactly ``scopes``.

    ``expiration_time``: a span (``"15m"``, ``"1hr"``, ``"2d"``, a timedelta), an aware datetime
    or an absolute Unix time in seconds. Bad scopes or expirations raise TypeError/ValueError.

    Example::

        token = ct.auth.create_public_token(
            scopes={"read": {"runs": ["run_abc"], "tags": "user_42"}}, expiration_time="1h"
        )
    """
    flat = flatten_scopes(scopes)
    exp = _expires_at(expiration_time)
    return _sign_until(_secret(_engine(engine)), flat, exp)


def _task_ids(task_or_tasks: Any) -> list[str]:
    items = task_or_tasks if isinstance(task_or_tasks, (list, tuple)) else [task_or_tasks]
    ids: list[str] = []
    for item in items:
        tid = item if isinstance(item, str) else getattr(item, "id", None)
        if not isinstance(tid, str):
            raise TypeError(f"expected a task id string or a task, not {type(item).__name__}")
        if not tid.strip():
            raise ValueError("task id must not be empty")
        ids.append(tid)
    if not ids:
        raise ValueError("give at least one task")
    return list(dict.fromkeys(ids))


def _trigger_token(
    action: str,
    task_or_tasks: Any,
    expiration_time: Expiration,
    multiple_use: bool,
    engine: Any,
    allow_options: Sequence[str] = (),
    subject: str | None = None,
) -> str:
    if not isinstance(multiple_use, bool):
        raise TypeError("multiple_use must be a bool")
    scopes = [f"{action}:tasks:{tid}" for tid in _task_ids(task_or_tasks)]
    if isinstance(allow_options, str) or not all(isinstance(o, str) for o in allow_options):
        raise TypeError("allow_options must be a list of trigger option names")
    scopes += [f"trigger:options:{name}" for name in allow_options]
    exp = _expires_at(expiration_time)
    extra: dict[str, Any] = {} if multiple_use else {ONE_TIME_CLAIM: True}
    if subject is not None:
        if not isinstance(subject, str) or not subject.strip():
            raise ValueError("subject must be a non-empty string")
        extra["sub"] = subject
    return _sign_until(_secret(_engine(engine)), scopes, exp, **extra)


def create_trigger_public_token(
    task_or_tasks: Any,
    *,
    expiration_time: Expiration = DEFAULT_TOKEN_TTL,
    multiple_use: bool = False,
    allow_options: Sequence[str] = (),
    subject: str | None = None,
    engine: Engine | None = None,
) -> str:
    """A ``trigger:tasks:<id>`` token; single use unless ``multiple_use=True``.

    ``task_or_tasks``: a task id, a task, or a list of them. On the public trigger route the
    holder may set only browser-safe options (payload, tags, delay, ttl, metadata,
    idempotency key); ``allow_options=["queue", ...]`` adds ``trigger:options:<name>``
    scopes for more. Idempotency keys sent with it are scoped to ``subject`` (e.g. your
    user id; without one, to this token alone). Example::

        token = ct.auth.create_trigger_public_token("send-email", subject="user_42")
        ct.auth.verify(token, action="trigger", resource="tasks:send-email", use=True)
    """
    return _trigger_token(
        "trigger", task_or_tasks, expiration_time, multiple_use, engine, allow_options, subject
    )


def create_batch_trigger_public_token(
    task_or_tasks: Any,
    *,
    expiration_time: Expiration = DEFAULT_TOKEN_TTL,
    multiple_use: bool = False,
    engine: Engine | None = None,
) -> str:
    """A ``batchTrigger:tasks:<id>`` token; single use unless ``multiple_use=True``.

    Example: ``ct.auth.create_batch_trigger_public_token([email_task, "send-sms"])``.
    """
    return _trigger_token("batchTrigger", task_or_tasks, expiration_time, multiple_use, engine)


# --- verifying -------------------------------------------------------------------------------


def decode(token: str, secret: str) -> dict[str, Any]:
    """Check signature, issuer, audience and expiry; return the claims.

    Raises ``jwt.InvalidTokenError`` (``verify`` maps it to ``AuthenticationError``).
    """
    claims: dict[str, Any] = jwt.decode(
        token,
        secret,
        algorithms=["HS256"],
        issuer=ISSUER,
        audience=AUDIENCE,
        options={"require": ["exp", "iss", "aud", "jti"], "verify_iat": False},
    )
    return claims


def _authentication_error(exc: jwt.InvalidTokenError) -> AuthenticationError:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return AuthenticationError("access token has expired")
    if isinstance(exc, jwt.InvalidSignatureError):
        return AuthenticationError("access token signature is invalid")
    if isinstance(exc, (jwt.InvalidIssuerError, jwt.InvalidAudienceError)):
        return AuthenticationError("access token was not issued for celery-trigger")
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return AuthenticationError("access token must be signed with HS256")
    return AuthenticationError(f"malformed access token: {exc}")


def verify(
    token: str,
    *,
    action: str,
    resource: str | Run,
    use: bool = False,
    engine: Engine | None = None,
) -> dict[str, Any]:
    """Authorise ``action`` on ``resource`` with ``token`` (for your own server); return claims.

    ``resource``: ``"runs:<id>"``, ``"tasks:<id>"``, ``"tags:<tag>"``, ``"batch:<id>"``,
    ``"waitpoints:<id>"``, a bare type (``"runs"``: needs the all-of-type scope) or a ``Run``
    (covered by a scope on its id, task, batch or any of its tags). With ``use=True`` a
    single-use token is consumed (only when permitted); a second use raises.

    Raises ``AuthenticationError`` (401: missing, malformed, tampered, expired, foreign or used
    token) or ``PermissionDeniedError`` (403: scopes do not cover the request). Example::

        claims = ct.auth.verify(token, action="read", resource=ct.runs.retrieve(run_id))
    """
    if action not in RESOURCES:
        raise ValueError(f"unknown action {action!r} (expected one of {sorted(RESOURCES)})")
    _candidates(resource)  # validate the caller's resource before looking at the token
    if token is None or token == "":
        raise AuthenticationError("missing access token")
    if not isinstance(token, str):
        raise TypeError(f"token must be a string, not {type(token).__name__}")
    trigger = _engine(engine)
    try:
        claims = decode(token, _secret(trigger))
    except jwt.InvalidTokenError as exc:
        raise _authentication_error(exc) from None
    scopes = claims.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise AuthenticationError("malformed access token: scopes must be a list of strings")
    if not permits(claims, action=action, resource=resource):
        shown = resource.id if isinstance(resource, Run) else resource
        raise PermissionDeniedError(f"access token does not allow {action} on {shown}")
    if use and claims.get(ONE_TIME_CLAIM) is True:
        ttl_ms = max(1, int((float(claims["exp"]) - time.time()) * 1000) + 1000)
        if not access_tokens.spend(trigger, str(claims["jti"]), ttl_ms):
            raise AuthenticationError("one-time use token has already been used")
    return claims
