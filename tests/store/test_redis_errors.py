"""RedisStore never leaks a redis-py exception (STYLE: one exception root): every public
method is wrapped by construction (``_store/redis/client.py: wrap_errors``), and against a
server that is not there each operation raises ``StoreUnavailableError``.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from celery_trigger._store.redis import RedisListener, RedisStore
from celery_trigger._store.redis.client import WRAPPED
from celery_trigger._store.types import (
    BrokerDelivery,
    Feed,
    IdempotencyKey,
    MetaUpdate,
    NewRun,
    SlotScope,
)
from celery_trigger.errors import StoreUnavailableError

#: Arguments of the right type for each parameter annotation of the store's methods.
SAMPLES: dict[str, Any] = {
    "str": "x",
    "int": 1,
    "bool": False,
    "float": 0.01,
    "str | None": "x",
    "int | None": None,
    "dict[str, str]": {"f": "v"},
    "dict[str, str] | None": None,
    "Sequence[str]": ["x"],
    "Sequence[tuple[str, int]]": [("x", 1)],
    "Sequence[tuple[str, str]]": [("x", "t")],
    "Sequence[NewRun]": [NewRun("r", "t", {"id": "r"})],
    "Sequence[MetaUpdate]": [MetaUpdate("r", "[]")],
    "Sequence[Feed]": [Feed.run("r")],
    "Sequence[str] | None": None,
    "Feed": Feed.run("r"),
    "SlotScope": SlotScope("q"),
    "SlotScope | None": None,
    "BrokerDelivery": BrokerDelivery("celery", "{}"),
    "IdempotencyKey | None": IdempotencyKey("t", "k"),
    "tuple[int, str] | None": None,
    "tuple[int, int] | None": None,
}
#: Methods that do no I/O (nothing to wrap at run time; still wrapped by construction).
NO_IO = {"listener", "close", "location"}


def public_methods(cls: type) -> list[str]:
    return sorted(
        name
        for name in dir(cls)
        if not name.startswith("_") and inspect.isfunction(inspect.getattr_static(cls, name))
    )


def test_every_public_method_of_the_redis_store_and_listener_is_wrapped() -> None:
    # Given the composed classes / Then each public method carries the wrapper's mark
    for cls in (RedisStore, RedisListener):
        methods = public_methods(cls)
        assert len(methods) > (40 if cls is RedisStore else 3)
        unwrapped = [m for m in methods if not getattr(getattr(cls, m), WRAPPED, False)]
        assert unwrapped == [], cls


def test_a_method_added_to_a_mixin_is_wrapped_without_being_listed() -> None:
    # Given a new operation on a subclass, composed and wrapped like RedisStore
    from celery_trigger._store.redis.client import wrap_errors

    @wrap_errors
    class Extended(RedisStore):
        def new_operation(self) -> None:
            self._client.execute_command("NO-SUCH-COMMAND")

    # Then it is wrapped, and a Redis error in it surfaces as StoreUnavailableError
    assert getattr(Extended.new_operation, WRAPPED, False)
    store = Extended("redis://127.0.0.1:1/0", prefix="dead")
    try:
        with pytest.raises(StoreUnavailableError):
            store.new_operation()
    finally:
        store.close()


@pytest.fixture
def dead_store() -> Iterator[RedisStore]:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    store = RedisStore(f"redis://127.0.0.1:{port}/0", prefix="dead")
    yield store
    store.close()


def arguments(method: Any) -> tuple[list[Any], dict[str, Any]] | None:
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for name, param in inspect.signature(method).parameters.items():
        if name == "self":
            continue
        text = str(param.annotation)
        if text not in SAMPLES:
            if param.default is not inspect.Parameter.empty:
                continue
            return None
        if param.kind is inspect.Parameter.KEYWORD_ONLY:
            kwargs[name] = SAMPLES[text]
        else:
            args.append(SAMPLES[text])
    return args, kwargs


def test_every_operation_against_a_stopped_server_raises_store_unavailable(
    dead_store: RedisStore,
) -> None:
    # Given a store whose server is not there
    called: list[str] = []
    for name in public_methods(RedisStore):
        if name in NO_IO:
            continue
        built = arguments(getattr(RedisStore, name).__wrapped__)
        assert built is not None, f"add a sample argument for {name}"
        args, kwargs = built
        # When the operation runs / Then it raises StoreUnavailableError, not a redis error
        with pytest.raises(StoreUnavailableError):
            getattr(dead_store, name)(*args, **kwargs)
        called.append(name)
    assert len(called) > 40


def test_a_listener_on_a_stopped_server_raises_store_unavailable(dead_store: RedisStore) -> None:
    # Given a listener of a store whose server is not there
    listener = dead_store.listener()
    try:
        # When it subscribes / Then StoreUnavailableError
        with pytest.raises(StoreUnavailableError):
            listener.subscribe([Feed.run("r")])
    finally:
        listener.close()
