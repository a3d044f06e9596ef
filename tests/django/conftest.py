"""Fixtures for the celery-trigger-django tests: a real Django project (``proj``), a real
PostgreSQL test database of its own, the suite's private Redis, real Celery workers.

- ``django_project`` (package scope): points the project at the private Redis, gives it a
  uniquely named test database (created here, dropped at the end), runs ``django.setup()``
  (so ``CeleryTriggerConfig.ready`` sets celery-trigger up as in a real project).
- ``ctapp`` (per test): a fresh key prefix and broker queue for the project's Celery app,
  cleared afterwards, and an empty database.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.helpers import redis_client, wait_for

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
SETTINGS = "tests.django.proj.settings"
#: ct task ids the test app defines (removed from the global registry afterwards)
TEST_TASK_PREFIX = "dj-"


def _postgres_answers() -> bool:
    import psycopg

    try:
        with psycopg.connect(dbname="postgres", connect_timeout=2, **PG):
            return True
    except psycopg.OperationalError:
        return False


def _terminate_connections(name: str) -> None:
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )


@pytest.fixture(scope="package")
def django_project(redis_server: str) -> Iterator[dict[str, str]]:
    """The configured project; yields the environment a subprocess of it needs."""
    if not _postgres_answers():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL does not answer on 127.0.0.1:5432 but CI is set")
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")
    import django
    from django.test.utils import setup_databases, teardown_databases

    db_name = f"test_ctdj_{uuid.uuid4().hex[:10]}"
    env = {
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "CT_DJANGO_REDIS_URL": f"{redis_server}/1",
        "CT_DJANGO_TEST_DB": db_name,
        "CT_DJANGO_KEY_PREFIX": f"dj{uuid.uuid4().hex[:8]}",
        # one broker queue for the package: Celery caches an app's queues on first use
        "CT_DJANGO_QUEUE": f"q-dj{uuid.uuid4().hex[:8]}",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        django.setup()
        old_config = setup_databases(verbosity=0, interactive=False)
        yield env
        from django.db import connections

        connections.close_all()
        _terminate_connections(db_name)
        teardown_databases(old_config, verbosity=0)
    finally:
        _forget_test_tasks()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _forget_test_tasks() -> None:
    from celery_trigger import _definition
    from celery_trigger._engine import schedules as engine_schedules

    for task_id in [d.id for d in _definition.all_definitions()]:
        if task_id.startswith(TEST_TASK_PREFIX):
            engine_schedules.forget(task_id)
            _definition._registry.pop(task_id, None)


class CtApp:
    """The project's Celery app set up for one test (own key prefix and broker queue)."""

    def __init__(self, app: Any, trigger: Any, prefix: str, queue: str) -> None:
        self.app, self.trigger, self.prefix, self.queue = app, trigger, prefix, queue

    @contextlib.contextmanager
    def worker(self, **options: Any) -> Iterator[Any]:
        from celery.contrib.testing.worker import start_worker

        with start_worker(
            self.app,
            pool="threads",
            concurrency=4,
            perform_ping_check=False,
            shutdown_timeout=10.0,
            loglevel="WARNING",
            **options,
        ) as w:
            yield w

    def cleanup(self) -> None:
        client = redis_client(self.trigger.store)
        keys = list(client.scan_iter(f"{self.prefix}:*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
        client.delete(self.queue)


TABLES = (
    "testapp_order",
    "django_celery_beat_periodictask",
    "django_celery_beat_crontabschedule",
    "django_celery_beat_intervalschedule",
    "django_celery_beat_periodictasks",
    "auth_user",
    "django_session",
    "django_admin_log",
)


def _empty_tables() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")


@pytest.fixture
def ctapp(django_project: dict[str, str], redis_server: str) -> Iterator[CtApp]:
    """celery-trigger on the project's app with a key prefix of this test only and the
    package's broker queue, emptied before and after."""
    from django.apps import apps

    import celery_trigger as ct
    from celery_trigger import _setup

    app = apps.get_app_config("celery_trigger_django").celery_app
    prefix = f"t{uuid.uuid4().hex[:10]}"
    queue = django_project["CT_DJANGO_QUEUE"]
    assert app.conf.task_default_queue == queue
    trigger = ct.setup(app, key_prefix=prefix, timer_poll_interval=0.02)
    state = CtApp(app, trigger, prefix, queue)
    redis_client(trigger.store).delete(queue)  # no message of an earlier test reaches this one
    _empty_tables()
    try:
        yield state
    finally:
        state.cleanup()
        _setup.reset()
        from django.db import connections

        _empty_tables()
        connections.close_all()


def wait_for_final(run_id: str, timeout: float = 15.0) -> Any:
    """The run once it reached a final status."""
    import celery_trigger as ct

    def check() -> Any:
        run = ct.runs.retrieve(run_id)
        return run if run.is_completed else None

    return wait_for(check, timeout=timeout, message=f"run {run_id} did not finish")


@pytest.fixture
def staff_client(ctapp: CtApp) -> Callable[..., Any]:
    """A test client logged in as a staff user with the given permissions (or superuser)."""
    from django.contrib.auth.models import Permission, User
    from django.test import Client

    def make(*perms: str, superuser: bool = False) -> Client:
        name = f"u{uuid.uuid4().hex[:8]}"
        if superuser:
            user = User.objects.create_superuser(name, f"{name}@example.com", "pw")
        else:
            user = User.objects.create_user(name, password="pw", is_staff=True)
            for perm in perms:
                label, codename = perm.split(".")
                user.user_permissions.add(
                    Permission.objects.get(content_type__app_label=label, codename=codename)
                )
        client = Client()
        client.force_login(user)
        return client

    return make
