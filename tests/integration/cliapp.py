"""The Celery app the CLI tests pass to ``celery -A tests.integration.cliapp trigger ...``:
the test's Redis and key prefix (``CT_CLI_REDIS``, ``CT_CLI_PREFIX``), its tasks."""

from __future__ import annotations

import os

from celery import Celery

import celery_trigger as ct

from . import cli_tasks  # noqa: F401  (the task definitions)

REDIS = os.environ.get("CT_CLI_REDIS", "redis://127.0.0.1:6379")
PREFIX = os.environ.get("CT_CLI_PREFIX", "cli")

app = Celery("cliapp", broker=f"{REDIS}/0", backend=f"{REDIS}/0")
app.conf.task_default_queue = f"q-{PREFIX}"
ct.setup(app, key_prefix=PREFIX, secret_key="test-secret-0123456789abcdef0123456789")
