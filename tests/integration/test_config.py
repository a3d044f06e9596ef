"""Configuration: safe Celery defaults only where the user set nothing (DESIGN §9)."""

from __future__ import annotations

from typing import Any

import pytest
from celery import Celery

import celery_trigger as ct
from celery_trigger import _celery, _setup


@pytest.fixture(autouse=True)
def _reset() -> Any:
    yield
    _setup.reset()


class DjangoLikeSettings:
    CELERY_TASK_ACKS_LATE = False
    CELERY_WORKER_PREFETCH_MULTIPLIER = 8
    CELERY_TRIGGER_KEY_PREFIX = "djangoish"


def test_namespaced_user_settings_are_kept_and_trigger_settings_read(redis_server: str) -> None:
    """Settings given through Celery's namespace (Django's CELERY_*) count as the user's."""
    # Given a Django-style settings object read with namespace="CELERY"
    app = Celery("cfg", broker=f"{redis_server}/0", set_as_current=False)
    app.config_from_object(DjangoLikeSettings, namespace="CELERY")
    # When celery-trigger is set up
    trigger = ct.setup(app)
    # Then the user's values stay, the others keep Celery's defaults (issue 11)
    assert app.conf.task_acks_late is False
    assert app.conf.worker_prefetch_multiplier == 8
    assert app.conf.task_reject_on_worker_lost is None
    assert trigger.settings.key_prefix == "djangoish"


#: App-wide settings ``setup`` used to change (issue 11): it must leave every one alone.
APP_WIDE = (
    "task_acks_late",
    "task_reject_on_worker_lost",
    "worker_prefetch_multiplier",
    "worker_cancel_long_running_tasks_on_connection_loss",
    "task_serializer",
    "result_serializer",
    "accept_content",
    "result_accept_content",
    "task_track_started",
)


def test_setup_changes_no_app_wide_task_setting(redis_server: str) -> None:
    """Issue 11: ``setup`` changes nothing plain tasks rely on; the trigger task class
    carries what trigger tasks need; only the Redis visibility timeout floor remains."""
    # Given two identical apps, one set up with celery-trigger
    plain = Celery("cfg2", broker=f"{redis_server}/0", set_as_current=False)
    app = Celery("cfg2", broker=f"{redis_server}/0", set_as_current=False)
    ct.setup(app, max_duration=7200)
    # Then every app-wide task and worker setting is Celery's default
    assert {k: app.conf[k] for k in APP_WIDE} == {k: plain.conf[k] for k in APP_WIDE}
    # And the trigger tasks carry late ack, requeue on a lost worker, STARTED and JSON
    task_cls = _celery.TriggerTask
    assert (task_cls.acks_late, task_cls.reject_on_worker_lost, task_cls.track_started) == (
        True,
        True,
        True,
    )
    assert task_cls.serializer == "json"
    # And the broker's visibility timeout outlasts the longest attempt
    assert app.conf.broker_transport_options["visibility_timeout"] >= 7200 + 300


def test_every_configuration_problem_is_reported_at_once(redis_server: str) -> None:
    """One ConfigurationError lists every problem."""
    app = Celery("cfg3", broker=f"{redis_server}/0", set_as_current=False)
    with pytest.raises(ct.ConfigurationError) as info:
        ct.setup(
            app,
            store="disk",
            environment="LIVE",
            machine="huge",
            lease_seconds=-1,
            secret_key="short",
        )
    problems = "\n".join(info.value.problems)
    for fragment in (
        "trigger_store",
        "trigger_environment",
        "machine",
        "lease_seconds",
        "secret_key",
    ):
        assert fragment in problems
    assert len(info.value.problems) >= 5


def test_memory_broker_gets_a_short_polling_interval() -> None:
    """Embedded mode: the in-memory transport is polled every 100 ms unless the user chose."""
    app = Celery("cfg4", broker="memory://", backend="cache+memory://", set_as_current=False)
    ct.setup(app, store="memory")
    assert app.conf.broker_transport_options["polling_interval"] == 0.1


def test_dirs_are_imported_at_worker_start(redis_server: str) -> None:
    """define_config(dirs=[...]): discover() imports every module of the listed packages."""
    app = Celery("cfg5", broker=f"{redis_server}/0", set_as_current=False)
    trigger = ct.setup(app, ct.define_config(project="cfg5", dirs=["tests.integration"]))
    imported = trigger.discover()
    assert "tests.integration.test_smoke" in imported
