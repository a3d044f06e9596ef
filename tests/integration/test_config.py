"""Configuration: safe Celery defaults only where the user set nothing (DESIGN §9)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from kombu import Connection

import celery_trigger as ct
from celery_trigger import _celery, _setup
from tests.helpers import wait_for


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


# settings resolved when first needed (issue 11 item 5) -------------------------------------
class LateSettings:
    trigger_key_prefix = "fromobject"
    trigger_wait_threshold = 2.5


def test_settings_set_after_setup_count(redis_server: str) -> None:
    """``app.conf`` changes and ``config_from_object`` after ``setup`` are what the engine
    uses: settings resolve on first use, not at ``setup``."""
    # Given an app set up before its configuration is complete
    app = Celery("late", broker=f"{redis_server}/0", set_as_current=False)
    trigger = ct.setup(app)
    # When the configuration is loaded afterwards
    app.config_from_object(LateSettings)
    app.conf.trigger_max_payload_bytes = 1234
    # Then celery-trigger uses it
    assert trigger.settings.key_prefix == "fromobject"
    assert trigger.settings.wait_threshold == 2.5
    assert trigger.settings.max_payload_bytes == 1234


def test_a_non_redis_broker_without_a_store_url_stops_the_worker(tmp_path: Path) -> None:
    """An AMQP broker and no ``trigger_redis_url``: a ``ConfigurationError`` that says so at
    worker start (no silent ``redis://localhost``); ``setup`` itself still succeeds."""
    queue = f"q-amqp-{uuid.uuid4().hex[:8]}"
    (tmp_path / "amqpapp.py").write_text(
        textwrap.dedent(
            f"""
            from celery import Celery
            import celery_trigger as ct
            app = Celery("amqpapp", broker="{AMQP_URL}")
            app.conf.task_default_queue = "{queue}"
            ct.setup(app)
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.getcwd()}"}
    celery_bin = Path(sys.executable).with_name("celery")
    try:
        # When a worker of that app starts
        proc = subprocess.run(
            [str(celery_bin), "-A", "amqpapp", "worker", "-P", "solo", "--without-mingle",
             "--without-gossip", "--without-heartbeat", "-l", "warning"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        _delete_amqp_queue(queue)
    # Then it stops with the configuration problem spelled out
    assert proc.returncode != 0
    assert "ConfigurationError" in proc.stderr and "trigger_redis_url" in proc.stderr


AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"


def _delete_amqp_queue(name: str) -> None:
    try:
        with Connection(AMQP_URL, connect_timeout=2) as conn:
            conn.default_channel.queue_delete(name)
    except Exception:  # not declared, or no RabbitMQ: nothing to clean
        pass


@ct.task(id="cfg-late-store")
def cfg_late_store(payload: int) -> int:
    return payload + 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_worker_starts_while_the_store_is_down(redis_server: str) -> None:
    """The store down at worker start: the worker starts and runs plain tasks; trigger work
    resumes once the store is back (definitions synced in the background)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    # Given a run store on a port where nothing listens yet
    port = _free_port()
    app = Celery("storedown", broker=f"{redis_server}/0", backend=f"{redis_server}/1",
                 set_as_current=False)  # fmt: skip
    app.conf.task_default_queue = f"q-storedown-{port}"
    app.conf.worker_hijack_root_logger = False

    @app.task(name="storedown.plain", shared=False)
    def plain(x: int) -> int:
        return x * 2

    trigger = ct.setup(app, redis_url=f"redis://127.0.0.1:{port}/0", timer_poll_interval=0.02)
    store_proc: subprocess.Popen[bytes] | None = None
    try:
        with start_worker(app, pool="threads", concurrency=2, perform_ping_check=False,
                          shutdown_timeout=10.0, loglevel="WARNING"):  # fmt: skip
            # Then the worker is up and plain tasks run
            assert plain.delay(21).get(timeout=15) == 42
            # When the store comes up
            store_proc = subprocess.Popen(
                [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            # Then the worker's definitions reach it and triggered runs complete
            wait_for(lambda: _store_has_def(trigger, "cfg-late-store"), timeout=20)
            handle = cfg_late_store.trigger(1)
            run = wait_for(lambda: _final(handle.id), timeout=20)
            assert run.output == 2
    finally:
        if store_proc is not None:
            store_proc.terminate()
            store_proc.wait(timeout=10)


def _store_has_def(trigger: Any, task_id: str) -> bool:
    try:
        return trigger.store.get_task_def(task_id) is not None
    except Exception:  # still down
        return False


def _final(run_id: str) -> ct.Run | None:
    run = ct.runs.retrieve(run_id)
    return run if run.is_completed else None
