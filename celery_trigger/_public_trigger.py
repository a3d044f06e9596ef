"""The public trigger route's request handling: what a browser holding a trigger token may
ask for (``POST /api/v1/tasks/<id>/trigger``, served by ``realtime_http``).

Invariants (issue 12, least privilege):

* A trigger token may set only the options a browser may set: ``BROWSER_OPTIONS``. Any
  other option (queue and its limit, concurrency key, machine, priority, attempts, ...)
  changes shared state or other users' runs and is refused with 403 unless the token
  carries the scope ``trigger:options:<option>`` (``create_trigger_public_token(...,
  allow_options=[...])``).
* An idempotency key from the route is derived from the token's subject (its ``sub``
  claim, else its ``jti``) and the key the browser sent, hashed together; the browser's
  text is never used verbatim, so it can only resolve to a run made through a token of the
  same subject, never to a run of another user or of the server.
* Bad values answer 422 (the typed errors of ``prepare``), including bodies nested too
  deeply or holding numbers too long to parse; a malformed body answers 400. A single-use
  token is spent only by a request that passed every check.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from . import auth
from ._engine.dispatch import create_prepared
from ._engine.idempotency import IdempotencyKey
from ._engine.prepare import TRIGGER_OPTIONS, prepare, task_known
from .errors import AuthenticationError, PayloadValidationError, PermissionDeniedError

#: trigger options any holder of a trigger token may set
BROWSER_OPTIONS = frozenset(
    {"tags", "delay", "ttl", "metadata", "idempotency_key", "idempotency_key_ttl"}
)
_BAD_BODY = 'Body must be a JSON object {"payload": ..., "options": {...}}'


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("an object repeats a key")
    return out


def parse_body(raw: bytes) -> tuple[int, Any]:
    """``(0, body)`` for a well-formed trigger body, else ``(status, error message)``."""
    try:
        body = json.loads(raw, parse_constant=_not_json, object_pairs_hook=_unique_keys)
    except RecursionError:
        return 422, "payload is nested too deeply"
    except json.JSONDecodeError:
        return 400, _BAD_BODY
    except ValueError as exc:  # NaN/Infinity, integers too long, repeated keys
        return 422, f"Body holds a value that cannot be stored: {exc}"
    extra = set(body) - {"payload", "options"} if isinstance(body, dict) else {"?"}
    if extra or not isinstance(body.get("options") or {}, dict):
        return 400, _BAD_BODY
    return 0, body


def _subject(claims: Mapping[str, Any]) -> str:
    sub = claims.get("sub")
    return sub if isinstance(sub, str) and sub else f"jti:{claims.get('jti')}"


def subject_key(claims: Mapping[str, Any], value: Any) -> IdempotencyKey:
    """The idempotency key a browser's ``value`` stands for under this token's subject."""
    if isinstance(value, list) and value and all(isinstance(p, str) for p in value):
        value = "-".join(value)
    if not isinstance(value, str) or not value:
        raise TypeError("idempotency_key must be a non-empty string or list of strings")
    material = json.dumps(["public-trigger", _subject(claims), value])
    return IdempotencyKey(hashlib.sha256(material.encode()).hexdigest(), value, "global")


def public_options(claims: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """The options to trigger with; ``PermissionDeniedError`` for one the token may not set."""
    scopes = set(claims.get("scopes") or ())
    for name in sorted(set(options) & TRIGGER_OPTIONS - BROWSER_OPTIONS):  # unknown: 422
        if f"trigger:options:{name}" not in scopes and "trigger:options" not in scopes:
            raise PermissionDeniedError(
                f"option {name!r} cannot be set with this token: it needs the scope "
                f"'trigger:options:{name}'"
            )
    out = dict(options)
    if out.get("idempotency_key") is not None:
        out["idempotency_key"] = subject_key(claims, out["idempotency_key"])
    return out


def run_trigger(engine: Any, task_id: str, token: str, body: Mapping[str, Any]) -> tuple[int, Any]:
    """Check the options, validate, spend the token, create the run (blocking)."""
    if not task_known(engine, task_id):
        return 404, {"error": f"Task {task_id} not found"}
    payload, options = body.get("payload"), body.get("options") or {}
    resource = f"tasks:{task_id}"
    try:
        claims = auth.verify(token, action="trigger", resource=resource, engine=engine)
        options = public_options(claims, options)
        prepared = prepare(engine, task_id, payload, options)  # checks; writes nothing
        auth.verify(token, action="trigger", resource=resource, use=True, engine=engine)
        run_id, cached = create_prepared(engine, prepared)
    except AuthenticationError as exc:
        return 401, {"error": str(exc)}
    except PermissionDeniedError as exc:
        return 403, {"error": str(exc)}
    except (TypeError, ValueError, PayloadValidationError) as exc:
        return 422, {"error": str(exc)}
    token_out = auth.run_handle_token(engine, run_id)
    return 200, {"id": run_id, "is_cached": cached, "public_access_token": token_out}
