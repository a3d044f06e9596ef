"""Issue 11, item 6: Celery's task options pass through ``@ct.task``; a celery-trigger queue
names the Celery queue its messages travel on; ``task_routes`` apply to trigger tasks."""

from __future__ import annotations

from typing import Any

import pytest

import celery_trigger as ct

from .conftest import Compat, wait_for_status

EMAILS = ct.queue(name="compat-emails", concurrency_limit=2, celery_queue="compat-emails-q")


@ct.task(
    id="compat-opts",
    rate_limit="100/s",
    soft_time_limit=30,
    time_limit=60,
    acks_late=False,
    bind=True,
)
def compat_opts(payload: int, ctx: ct.Context) -> str:
    return ctx.run.id


@ct.task(id="compat-email", queue=EMAILS)
def compat_email(payload: str) -> str:
    return f"sent {payload}"


@ct.task(id="compat-routed")
def compat_routed(payload: int) -> int:
    return payload * 3


@pytest.mark.parametrize("broker", ["redis"], indirect=True)
def test_celery_task_options_pass_through(make_app: Any) -> None:
    """rate_limit, time limits and acks_late reach the Celery task; bind=True gives ctx."""
    compat: Compat = make_app()
    celery_task = compat.app.tasks["compat-opts"]
    assert celery_task.rate_limit == "100/s"
    assert (celery_task.soft_time_limit, celery_task.time_limit) == (30, 60)
    assert celery_task.acks_late is False
    with compat.worker():
        handle = compat_opts.trigger(1)
        assert wait_for_status(handle.id).output == handle.id


def test_celery_options_that_cannot_apply_are_refused_with_a_reason() -> None:
    """serializer other than JSON, and bind=True without a ctx parameter, are refused."""
    with pytest.raises(ValueError, match="JSON only"):
        ct.task(id="compat-pickle", serializer="pickle")(lambda payload: payload)
    with pytest.raises(TypeError, match="ctx"):
        ct.task(id="compat-bind", bind=True)(lambda payload: payload)


def test_celery_queue_of_a_trigger_queue_carries_its_messages(make_app: Any) -> None:
    """``ct.queue(..., celery_queue=...)``: triggered runs and plain sends of its tasks go to
    that Celery queue, and a worker consuming only it runs them."""
    compat: Compat = make_app()
    compat.queues.append("compat-emails-q")
    with compat.worker(queues=["compat-emails-q"]):
        handle = compat_email.trigger("a")
        result = compat_email.celery_task.delay("b")
        assert wait_for_status(handle.id).output == "sent a"
        assert result.get(timeout=20) == "sent b"


def test_task_routes_apply_to_trigger_tasks(make_app: Any) -> None:
    """``task_routes`` route a trigger task's messages like any task's."""
    compat: Compat = make_app()
    routed = compat.queue_name("routed")
    compat.app.conf.task_routes = {"compat-routed": {"queue": routed}}
    with compat.worker(queues=[routed]):
        handle = compat_routed.trigger(2)
        result = compat_routed.celery_task.delay(3)
        assert wait_for_status(handle.id).output == 6
        assert result.get(timeout=20) == 9
