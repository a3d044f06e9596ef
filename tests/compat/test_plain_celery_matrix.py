"""Issue 11, item 7: installing celery-trigger changes nothing a Celery project relies on.

One list of plain-Celery scenarios (delay, countdown, ETA, expires, chains, groups, chords,
``self.retry``, ``autoretry_for``, ``rate_limit``, ``task_routes``, ``inspect().scheduled()``,
``AsyncResult`` states and ``get()``, the task settings a plain task sees) runs on an app
without ``setup()`` and on the same app with it, on the Redis broker and on RabbitMQ; each
scenario's outcome must be identical.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from celery import Celery, chain, chord, group
from celery.exceptions import TaskRevokedError

import celery_trigger as ct
from celery_trigger import _setup

from .conftest import BROKERS, RABBITMQ_URL, Compat, _rabbitmq_answers, build_app, wait_for

Outcome = Any
_events: dict[str, threading.Event] = {}


def _event(key: str) -> threading.Event:
    return _events.setdefault(key, threading.Event())


def define_tasks(app: Celery) -> dict[str, Any]:
    """The plain tasks of a Celery project (the same names on both apps)."""

    @app.task(name="m.add", shared=False)
    def add(x: int, y: int) -> int:
        return x + y

    @app.task(name="m.mul", shared=False)
    def mul(x: int, y: int) -> int:
        return x * y

    @app.task(name="m.xsum", shared=False)
    def xsum(values: list[int]) -> int:
        return sum(values)

    @app.task(name="m.retry", bind=True, max_retries=3, shared=False)
    def retrying(self: Any) -> int:
        if self.request.retries < 2:
            raise self.retry(countdown=0.1)
        return int(self.request.retries)

    @app.task(
        name="m.auto",
        bind=True,
        autoretry_for=(KeyError,),
        retry_kwargs={"countdown": 0.1, "max_retries": 3},
        shared=False,
    )
    def auto(self: Any) -> str:
        if self.request.retries < 1:
            raise KeyError("once")
        return f"ok after {self.request.retries}"

    @app.task(name="m.limited", rate_limit="1000/s", shared=False)
    def limited(x: int) -> int:
        return x

    @app.task(name="m.fail", shared=False)
    def fail() -> None:
        raise ValueError("boom")

    @app.task(name="m.routed", bind=True, shared=False)
    def routed(self: Any) -> bool:
        return str(self.request.delivery_info.get("routing_key", "")).endswith("-routed")

    @app.task(name="m.block", bind=True, shared=False)
    def block(self: Any, key: str) -> str:
        _event(f"{key}:started").set()
        _event(f"{key}:go").wait(10)
        return "done"

    @app.task(name="m.probe", bind=True, shared=False)
    def probe(self: Any) -> dict[str, Any]:
        return {
            "acks_late": self.acks_late,
            "reject_on_worker_lost": self.reject_on_worker_lost,
            "track_started": self.track_started,
            "serializer": self.serializer,
            "content_type": self.request.delivery_info.get("content_type"),
            "prefetch": app.conf.worker_prefetch_multiplier,
            "cancel_on_loss": app.conf.worker_cancel_long_running_tasks_on_connection_loss,
        }

    return {t.name.split(".")[1]: t for t in (add, mul, xsum, retrying, auto, limited, fail,
                                              routed, block, probe)}  # fmt: skip


# scenarios -------------------------------------------------------------------------------
def s_delay(app: Celery, t: dict[str, Any]) -> Outcome:
    result = t["add"].delay(2, 3)
    return result.get(timeout=10), result.state


def s_countdown_and_scheduled(app: Celery, t: dict[str, Any]) -> Outcome:
    started = time.monotonic()
    result = t["add"].apply_async((1, 1), countdown=1.5)
    scheduled = wait_for(lambda: result.id in _scheduled(app), timeout=10)
    value = result.get(timeout=10)
    return value, scheduled, time.monotonic() - started >= 1.4


def s_eta(app: Celery, t: dict[str, Any]) -> Outcome:
    eta = datetime.now(timezone.utc) + timedelta(seconds=1)
    result = t["add"].apply_async((2, 2), eta=eta)
    value = result.get(timeout=10)
    return value, datetime.now(timezone.utc) >= eta


def s_expires(app: Celery, t: dict[str, Any]) -> Outcome:
    past = datetime.now(timezone.utc) - timedelta(seconds=5)
    result = t["add"].apply_async((1, 2), expires=past)
    wait_for(lambda: result.state == "REVOKED", timeout=10)
    with pytest.raises(TaskRevokedError):
        result.get(timeout=5)
    return result.state


def s_chain(app: Celery, t: dict[str, Any]) -> Outcome:
    return chain(t["add"].s(1, 2), t["mul"].s(10))().get(timeout=10)


def s_group(app: Celery, t: dict[str, Any]) -> Outcome:
    return group(t["add"].s(i, i) for i in range(3))().get(timeout=10)


def s_chord(app: Celery, t: dict[str, Any]) -> Outcome:
    return chord(t["add"].s(i, i) for i in range(3))(t["xsum"].s()).get(timeout=10)


def s_self_retry(app: Celery, t: dict[str, Any]) -> Outcome:
    result = t["retry"].delay()
    return result.get(timeout=10), result.state


def s_autoretry(app: Celery, t: dict[str, Any]) -> Outcome:
    return t["auto"].delay().get(timeout=10)


def s_rate_limit(app: Celery, t: dict[str, Any]) -> Outcome:
    return [r.get(timeout=10) for r in [t["limited"].delay(i) for i in range(3)]]


def s_task_routes(app: Celery, t: dict[str, Any]) -> Outcome:
    return t["routed"].delay().get(timeout=10)


def s_failure(app: Celery, t: dict[str, Any]) -> Outcome:
    result = t["fail"].delay()
    with pytest.raises(ValueError, match="boom"):
        result.get(timeout=10)
    return result.state


def s_states(app: Celery, t: dict[str, Any]) -> Outcome:
    """The AsyncResult states a plain task goes through (no STARTED by default)."""
    key = f"{app.main}:states:{uuid.uuid4().hex}"
    result = t["block"].delay(key)
    _event(f"{key}:started").wait(10)
    while_running = result.state
    _event(f"{key}:go").set()
    return while_running, result.get(timeout=10), result.state


def s_task_settings(app: Celery, t: dict[str, Any]) -> Outcome:
    return t["probe"].delay().get(timeout=10)


SCENARIOS: dict[str, Callable[[Celery, dict[str, Any]], Outcome]] = {
    name[2:]: fn for name, fn in globals().items() if name.startswith("s_")
}


def _scheduled(app: Celery) -> set[str]:
    replies = app.control.inspect(timeout=1.0).scheduled() or {}
    return {entry["request"]["id"] for entries in replies.values() for entry in entries}


def _run_all(compat: Compat) -> dict[str, Outcome]:
    app = compat.app
    routed = compat.queue_name("routed")
    app.conf.task_routes = {"m.routed": {"queue": routed}}
    tasks = define_tasks(app)
    out: dict[str, Outcome] = {}
    with compat.worker(queues=[compat.queue, routed]):
        for name, scenario in SCENARIOS.items():
            try:
                out[name] = scenario(app, tasks)
            except Exception as exc:  # recorded: both apps must fail the same way
                out[name] = f"error: {type(exc).__name__}: {exc}"
    return out


@pytest.fixture(scope="module", params=BROKERS)
def outcomes(
    request: pytest.FixtureRequest, redis_server: str
) -> Iterator[tuple[dict[str, Outcome], dict[str, Outcome]]]:
    """Every scenario's outcome without and with ``setup()`` on one broker."""
    if request.param == "rabbitmq":
        if not _rabbitmq_answers():
            if os.environ.get("CI"):
                pytest.fail("RabbitMQ is not answering on 127.0.0.1:5672 but CI is set")
            pytest.skip("RabbitMQ is not answering on 127.0.0.1:5672")
        url = RABBITMQ_URL
    else:
        url = f"{redis_server}/0"
    plain = build_app(url, redis_server, name="matrix-plain")
    with_ct = build_app(url, redis_server, name="matrix-ct")
    try:
        without = _run_all(plain)
        with_ct.trigger = ct.setup(
            with_ct.app, key_prefix=with_ct.prefix, redis_url=with_ct.redis_url
        )
        with_setup = _run_all(with_ct)
        yield without, with_setup
    finally:
        plain.cleanup()
        with_ct.cleanup()
        _setup.reset()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_plain_celery_behaves_the_same_with_setup(
    outcomes: tuple[dict[str, Outcome], dict[str, Outcome]], scenario: str
) -> None:
    """The scenario's outcome on the app with ``setup()`` is the one without it."""
    without, with_setup = outcomes
    assert not str(without[scenario]).startswith("error:"), without[scenario]
    assert with_setup[scenario] == without[scenario]
