"""Public access tokens against a real store (SEMANTICS §12.2, RT-5, RT-6, RT-7).

Runs are created without a worker (they stay QUEUED): only their ids, tags and batch matter.
Single-use trigger tokens are consumed through the real Redis store (``mark_token_used``).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest

import celery_trigger as ct
from celery_trigger import auth
from tests.helpers import redis_client, wait_for

from .conftest import Engine

OTHER_SECRET = "another-secret-0123456789abcdef0123456789"


@ct.task(id="auth-noop")
def auth_noop(payload: Any) -> Any:
    return payload


def _denied(token: str, resource: str | ct.Run, action: str = "read") -> bool:
    try:
        auth.verify(token, action=action, resource=resource)
    except ct.PermissionDeniedError:
        return True
    return False


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _sign_raw(secret: str, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": "celery-trigger", "aud": "celery-trigger", "iat": now, "exp": now + 60}
    body.update(jti="j1", scopes=["read:runs"])
    body.update(claims)
    return jwt.encode({k: v for k, v in body.items() if v is not None}, secret, algorithm="HS256")


# --- RT-5 --------------------------------------------------------------------------------------


def test_run_token_reads_its_run_only_then_expires(engine: Engine) -> None:
    """RT-5: ``read: {runs: [A]}`` reads A, is refused for B, and is refused once expired."""
    # Given two runs and a token for the first that expires in about two seconds
    first, second = auth_noop.trigger({}), auth_noop.trigger({})
    token = ct.auth.create_public_token(
        scopes={"read": {"runs": [first.id]}}, expiration_time=int(time.time()) + 2
    )
    # Then it reads the first run (by id or as a Run object) and is refused for the second
    claims = ct.auth.verify(token, action="read", resource=f"runs:{first.id}")
    assert claims["scopes"] == [f"read:runs:{first.id}"]
    assert ct.auth.verify(token, action="read", resource=ct.runs.retrieve(first.id))
    assert _denied(token, f"runs:{second.id}")
    assert _denied(token, ct.runs.retrieve(second.id))

    # And once its expiry passes it is refused for the first run too, as unauthenticated
    def expired() -> bool:
        try:
            ct.auth.verify(token, action="read", resource=f"runs:{first.id}")
        except ct.AuthenticationError as exc:
            return "expired" in str(exc)
        return False

    wait_for(expired, timeout=5)


def test_default_expiry_is_fifteen_minutes_and_claims_are_complete(engine: Engine) -> None:
    """§12.2: default 15 minutes; every token has issuer, audience, a unique jti and scopes."""
    one = _claims(ct.auth.create_public_token(scopes=["read:runs"]))
    two = _claims(ct.auth.create_public_token(scopes=["read:runs"], expiration_time="2d"))
    assert one["exp"] - one["iat"] == 900
    assert two["exp"] - two["iat"] == 2 * 86_400
    assert (one["iss"], one["aud"]) == ("celery-trigger", "celery-trigger")
    assert one["jti"] and one["jti"] != two["jti"]
    assert "one_time" not in one


def test_run_handle_token_reads_its_run(engine: Engine) -> None:
    """§12.2: a run handle's token is ``read:runs:<id>`` for an hour (D-4)."""
    mine, other = auth_noop.trigger({}), auth_noop.trigger({})
    token = mine.public_access_token
    assert token is not None
    claims = ct.auth.verify(token, action="read", resource=ct.runs.retrieve(mine.id))
    assert claims["exp"] - claims["iat"] == 3600
    assert _denied(token, ct.runs.retrieve(other.id))
    assert _denied(token, f"runs:{mine.id}", action="write")


# --- RT-6 --------------------------------------------------------------------------------------


def test_single_use_trigger_token_works_once(engine: Engine) -> None:
    """RT-6: a trigger token without ``multiple_use`` is accepted once, then rejected."""
    # Given a single-use trigger token for auth-noop (made from the task object)
    token = ct.auth.create_trigger_public_token(auth_noop)
    assert _claims(token)["scopes"] == ["trigger:tasks:auth-noop"]
    # When it is checked without use, or used for another task, it is not consumed
    ct.auth.verify(token, action="trigger", resource="tasks:auth-noop")
    assert _denied(token, "tasks:other-task", action="trigger")
    # Then the first use succeeds and the second is rejected as unauthenticated
    ct.auth.verify(token, action="trigger", resource="tasks:auth-noop", use=True)
    with pytest.raises(ct.AuthenticationError, match="one-time use token has already been used"):
        ct.auth.verify(token, action="trigger", resource="tasks:auth-noop", use=True)
    # And the used-marker expires with the token (not before, not much after)
    jti = _claims(token)["jti"]
    ttl_ms = redis_client(engine.store).pttl(engine.store.keys.token_use(jti))
    assert 880_000 < ttl_ms <= 901_000


def test_multiple_use_trigger_token_works_every_time(engine: Engine) -> None:
    """RT-6: with ``multiple_use=True`` both uses succeed."""
    token = ct.auth.create_trigger_public_token(
        ["auth-noop", "other"], multiple_use=True, expiration_time="1m"
    )
    for _ in range(3):
        ct.auth.verify(token, action="trigger", resource="tasks:auth-noop", use=True)
    ct.auth.verify(token, action="trigger", resource="tasks:other", use=True)


def test_batch_trigger_token_is_single_use_and_only_for_batches(engine: Engine) -> None:
    """§12.2: ``batchTrigger:tasks:<id>``, single-use by default, no plain trigger."""
    token = ct.auth.create_batch_trigger_public_token("auth-noop")
    assert _denied(token, "tasks:auth-noop", action="trigger")
    ct.auth.verify(token, action="batchTrigger", resource="tasks:auth-noop", use=True)
    with pytest.raises(ct.AuthenticationError, match="already been used"):
        ct.auth.verify(token, action="batchTrigger", resource="tasks:auth-noop", use=True)


def test_single_use_is_shared_by_every_engine_on_the_redis(
    make_engine: Callable[..., Engine],
) -> None:
    """RT-6 across processes: two engines on one Redis and key prefix (two servers) and eight
    racing threads; exactly one use of a single-use token wins."""
    # Given two engines sharing Redis, key prefix and secret, and a token from the first
    first = make_engine()
    second = make_engine(key_prefix=first.prefix)
    token = ct.auth.create_trigger_public_token("auth-noop", engine=first.trigger)
    # When eight threads use it at once through either engine
    barrier = threading.Barrier(8)
    outcomes: list[str] = []
    lock = threading.Lock()

    def use(trigger: ct.Trigger) -> None:
        barrier.wait(timeout=10)
        try:
            auth.verify(
                token, action="trigger", resource="tasks:auth-noop", use=True, engine=trigger
            )
            outcome = "ok"
        except ct.AuthenticationError as exc:
            outcome = str(exc)
        with lock:
            outcomes.append(outcome)

    threads = [
        threading.Thread(target=use, args=((first, second)[i % 2].trigger,)) for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    # Then exactly one succeeded and the rest were told the token was used
    assert sorted(outcomes) == ["ok"] + ["one-time use token has already been used"] * 7


# --- RT-7 --------------------------------------------------------------------------------------


def test_tag_scope_reads_runs_with_that_tag(engine: Engine) -> None:
    """RT-7: ``read: {tags: ["t"]}`` reads any run tagged ``t``, not an untagged run."""
    tagged = ct.runs.retrieve(auth_noop.trigger({}, tags=["x", "t"]).id)
    untagged = ct.runs.retrieve(auth_noop.trigger({}).id)
    other_tag = ct.runs.retrieve(auth_noop.trigger({}, tags=["u"]).id)
    token = ct.auth.create_public_token(scopes={"read": {"tags": ["t"]}})
    ct.auth.verify(token, action="read", resource=tagged)
    ct.auth.verify(token, action="read", resource="tags:t")
    assert _denied(token, untagged)
    assert _denied(token, other_tag)
    assert _denied(token, "tags:u")


def test_batch_scope_reads_runs_of_that_batch(engine: Engine) -> None:
    """RT-7: ``read: {batch: "batch_x"}`` reads every run of the batch; the batch handle's
    token does the same; runs outside the batch are refused."""
    batch = auth_noop.batch_trigger([{"payload": 1}, {"payload": 2}])
    outsider = ct.runs.retrieve(auth_noop.trigger({}).id)
    members = [ct.runs.retrieve(run_id) for run_id in batch.runs]
    assert {run.batch_id for run in members} == {batch.batch_id}
    token = ct.auth.create_public_token(scopes={"read": {"batch": batch.batch_id}})
    assert batch.public_access_token is not None
    for candidate in (token, batch.public_access_token):
        for run in members:
            ct.auth.verify(candidate, action="read", resource=run)
        ct.auth.verify(candidate, action="read", resource=f"batch:{batch.batch_id}")
        assert _denied(candidate, outsider)


def test_waitpoint_token_verifies_for_writing_its_waitpoint(engine: Engine) -> None:
    """§12.2: a waitpoint token's access token is ``write:waitpoints:<id>`` (24 h)."""
    token, other = ct.wait.create_token(), ct.wait.create_token()
    assert token.public_access_token is not None
    pat = token.public_access_token
    ct.auth.verify(pat, action="write", resource=f"waitpoints:{token.id}")
    assert _denied(pat, f"waitpoints:{other.id}", action="write")
    assert _denied(pat, f"waitpoints:{token.id}", action="read")


# --- refused tokens ----------------------------------------------------------------------------


def _tamper_payload(token: str) -> str:
    head, payload, sig = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["scopes"] = ["read:runs"]
    raw = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{head}.{raw}.{sig}"


def _flip_signature(token: str) -> str:
    head, payload, sig = token.split(".")
    middle = len(sig) // 2
    flipped = "A" if sig[middle] != "A" else "B"
    return f"{head}.{payload}.{sig[:middle]}{flipped}{sig[middle + 1 :]}"


def test_tampered_foreign_expired_and_malformed_tokens_are_unauthenticated(
    engine: Engine,
) -> None:
    """§12.2: tokens the server cannot trust are refused with AuthenticationError (401)."""
    secret = engine.trigger.settings.secret_key
    run_id = auth_noop.trigger({}).id
    good = ct.auth.create_public_token(scopes=["read:runs:run_elsewhere"])
    unsigned = jwt.encode(_claims(good), key=None, algorithm="none")
    cases = {
        "tampered payload": (_tamper_payload(good), "signature"),
        "flipped signature": (_flip_signature(good), "signature"),
        "other secret": (_sign_raw(OTHER_SECRET), "signature"),
        "expired": (_sign_raw(secret, exp=int(time.time()) - 5), "expired"),
        "wrong issuer": (_sign_raw(secret, iss="https://id.trigger.dev"), "not issued"),
        "wrong audience": (_sign_raw(secret, aud="someone-else"), "not issued"),
        "no audience": (_sign_raw(secret, aud=None), "aud"),
        "no expiry": (_sign_raw(secret, exp=None), "exp"),
        "no jti": (_sign_raw(secret, jti=None), "jti"),
        "scopes not a list": (_sign_raw(secret, scopes="read:runs"), "scopes"),
        "alg none": (unsigned, "HS256"),
        "garbage": ("not-a-jwt", "malformed"),
        "empty": ("", "missing"),
    }
    for name, (token, why) in cases.items():
        try:
            ct.auth.verify(token, action="read", resource=f"runs:{run_id}")
        except ct.AuthenticationError as exc:
            assert why in str(exc), f"{name}: {exc}"
        else:
            pytest.fail(f"{name}: the token was accepted")
    # And the same good token, untampered, is merely not permitted for that run
    assert _denied(good, f"runs:{run_id}")


def test_token_without_scopes_can_do_nothing(engine: Engine) -> None:
    """§12.2: a token without scopes is valid but permits nothing."""
    run = ct.runs.retrieve(auth_noop.trigger({}, tags=["t"]).id)
    all_empty: list[Any] = [[], {}, {"read": {"runs": []}}]
    for scopes in all_empty:
        token = ct.auth.create_public_token(scopes=scopes)
        assert _claims(token)["scopes"] == []
        assert _denied(token, run)
        assert _denied(token, "runs")
        assert _denied(token, "tasks:auth-noop", action="trigger")


def test_bad_arguments_raise_at_the_call(engine: Engine) -> None:
    """Errors in scopes, expirations, tasks or verify's request are raised immediately."""
    with pytest.raises(ValueError, match="unknown action"):
        ct.auth.create_public_token(scopes={"delete": {"runs": True}})
    with pytest.raises(TypeError, match="scopes must be a mapping"):
        ct.auth.create_public_token(scopes="read:runs")
    with pytest.raises(ValueError, match="absolute Unix time"):
        ct.auth.create_public_token(scopes=["read:runs"], expiration_time=900)
    with pytest.raises(ValueError, match="at least one task"):
        ct.auth.create_trigger_public_token([])
    with pytest.raises(TypeError, match="task id string or a task"):
        ct.auth.create_trigger_public_token(42)
    with pytest.raises(TypeError, match="multiple_use"):
        ct.auth.create_trigger_public_token("t", multiple_use="yes")  # type: ignore[arg-type]
    token = ct.auth.create_public_token(scopes=["read:runs"])
    with pytest.raises(ValueError, match="unknown action"):
        ct.auth.verify(token, action="delete", resource="runs:r")
    with pytest.raises(ValueError, match="unknown type"):
        ct.auth.verify(token, action="read", resource="run:r")
    with pytest.raises(TypeError, match="token must be a string"):
        ct.auth.verify(token.encode(), action="read", resource="runs:r")  # type: ignore[arg-type]


def test_without_secret_key_tokens_cannot_be_issued_or_verified(
    make_engine: Callable[..., Engine],
) -> None:
    """No ``trigger_secret_key``: handles carry no token; issuing or verifying is a config error."""
    make_engine(secret_key="")
    assert auth_noop.trigger({}).public_access_token is None
    with pytest.raises(ct.ConfigurationError, match="trigger_secret_key"):
        ct.auth.create_public_token(scopes=["read:runs"])
    forged = _sign_raw(OTHER_SECRET)
    with pytest.raises(ct.ConfigurationError, match="trigger_secret_key"):
        ct.auth.verify(forged, action="read", resource="runs:r")
