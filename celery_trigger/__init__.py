"""celery-trigger: Trigger.dev v4 task semantics for existing Celery projects.

Add one line to a Celery app and define tasks::

    from celery import Celery
    import celery_trigger as ct

    app = Celery("proj", broker="redis://localhost:6379/0")
    ct.setup(app)

    @ct.task(id="hello", retry=ct.RetryOptions(max_attempts=3))
    def hello(payload: dict) -> str:
        return f"hi {payload['name']}"

    handle = hello.trigger({"name": "Ada"})
    print(ct.runs.poll(handle.id).output)

Importing this package has no side effects.
"""

from __future__ import annotations

from . import (
    auth,
    batch,
    context,
    idempotency_keys,
    logger,
    metadata,
    metrics,
    queues,
    realtime,
    retry,
    runs,
    schedules,
    steps,
    tags,
    tasks,
    usage,
    wait,
)
from ._config import TriggerConfig, define_config
from ._definition import TaskDefinition as Task
from ._definition import schema_task, task
from ._engine.idempotency import IdempotencyKey
from ._setup import Trigger, setup
from .context import Context
from .errors import (
    AbortTaskRunError,
    AuthenticationError,
    BatchTriggerError,
    ConcurrentWaitError,
    ConfigurationError,
    InvalidRunStateError,
    NonDeterminismError,
    PayloadValidationError,
    PermissionDeniedError,
    PublishError,
    QueueNotFoundError,
    RunNotFoundError,
    ScheduleNotFoundError,
    StoreUnavailableError,
    SubtaskUnwrapError,
    TaskNotFoundError,
    TaskRunError,
    TokenNotFoundError,
    TriggerError,
    WaitpointTimeoutError,
)
from .options import BatchItem, MachinePreset, Queue, RetryOptions, queue
from .realtime import RunSubscription, StreamPart
from .result import BatchHandle, BatchResult, Result, Run, RunHandle
from .status import RunStatus

__version__ = "0.1.0"

__all__ = [
    "AbortTaskRunError",
    "AuthenticationError",
    "BatchHandle",
    "BatchItem",
    "BatchResult",
    "BatchTriggerError",
    "ConcurrentWaitError",
    "ConfigurationError",
    "Context",
    "IdempotencyKey",
    "InvalidRunStateError",
    "MachinePreset",
    "NonDeterminismError",
    "PayloadValidationError",
    "PermissionDeniedError",
    "Queue",
    "QueueNotFoundError",
    "Result",
    "RetryOptions",
    "Run",
    "RunHandle",
    "RunNotFoundError",
    "RunStatus",
    "RunSubscription",
    "ScheduleNotFoundError",
    "PublishError",
    "StoreUnavailableError",
    "StreamPart",
    "SubtaskUnwrapError",
    "Task",
    "TaskNotFoundError",
    "TaskRunError",
    "TokenNotFoundError",
    "Trigger",
    "TriggerConfig",
    "TriggerError",
    "WaitpointTimeoutError",
    "__version__",
    "auth",
    "batch",
    "context",
    "define_config",
    "idempotency_keys",
    "logger",
    "metadata",
    "metrics",
    "queue",
    "queues",
    "realtime",
    "retry",
    "runs",
    "schedules",
    "schema_task",
    "setup",
    "steps",
    "tags",
    "task",
    "tasks",
    "usage",
    "wait",
]
