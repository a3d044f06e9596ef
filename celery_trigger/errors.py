"""Every exception celery-trigger raises to callers.

The tree::

    TriggerError
    ├── AbortTaskRunError          raise in a run: fail now, no retry
    ├── SubtaskUnwrapError         Result.unwrap() of a failed child
    ├── WaitpointTimeoutError      a waited-for token timed out
    ├── BatchTriggerError          a batch could not be created (nothing was written)
    ├── TaskNotFoundError          unknown task id where a definition is required
    ├── PayloadValidationError     a schema_task payload failed validation at trigger time
    ├── RunNotFoundError           runs.* on an id that does not exist
    ├── QueueNotFoundError         queues.* on a queue no code or trigger has defined
    ├── TokenNotFoundError         wait.* on a token id that does not exist
    ├── ScheduleNotFoundError      schedules.* on a schedule id that does not exist
    ├── ConcurrentWaitError        two durable waits outstanding in one run
    ├── NonDeterminismError        replay found a different operation at a journal position
    ├── ConfigurationError         bad settings; lists every problem at once
    ├── StoreUnavailableError      Redis (or the store) could not be reached
    ├── PublishError               the broker refused a new run's message (the run is
    │                              SYSTEM_FAILURE, never executed; triggering again is safe)
    └── InvalidRunStateError       an operation that the run's status forbids

Invalid option values raise the built-in ``ValueError``/``TypeError`` at the call, before
anything is written (API.md), so they are not part of this tree.
"""

from __future__ import annotations

from typing import Any


class TriggerError(Exception):
    """Root of every celery-trigger error."""


class AbortTaskRunError(TriggerError):
    """Raise inside a run to fail the attempt immediately without retrying.

    Example::

        if payload["user"] is None:
            raise ct.AbortTaskRunError("no user")
    """


class TaskRunError(TriggerError):
    """The error of a finished run, rebuilt from its stored record.

    ``name`` is the exception class name (or an internal code such as
    ``MAX_DURATION_EXCEEDED``), ``message`` its text, ``stack_trace`` the formatted trace.
    """

    def __init__(self, name: str, message: str, stack_trace: str | None = None) -> None:
        super().__init__(message)
        self.name = name
        self.message = message
        self.stack_trace = stack_trace

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.name, self.message, self.stack_trace))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "message": self.message, "stack_trace": self.stack_trace}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskRunError:
        return cls(
            str(data.get("name", "Error")), str(data.get("message", "")), data.get("stack_trace")
        )

    def __repr__(self) -> str:
        return f"TaskRunError(name={self.name!r}, message={self.message!r})"


class SubtaskUnwrapError(TriggerError):
    """``Result.unwrap()`` on a child run that did not succeed."""

    def __init__(self, task_id: str, run_id: str, cause: TaskRunError | None) -> None:
        text = f"Error in {task_id}"
        if cause is not None and cause.name not in ("STRING_ERROR",):
            text = f"{text}: {cause.message}"
        super().__init__(text)
        self.task_id = task_id
        self.run_id = run_id
        self.cause = cause
        self.__cause__ = cause

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.task_id, self.run_id, self.cause))


class WaitpointTimeoutError(TriggerError):
    """A waitpoint token timed out before it was completed."""


class BatchTriggerError(TriggerError):
    """A batch could not be created; no run of it exists."""

    def __init__(
        self,
        message: str,
        *,
        phase: str = "create",
        item_count: int = 0,
        batch_id: str | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.phase = phase
        self.item_count = item_count
        self.batch_id = batch_id
        self.is_rate_limited = False
        self.retry_after_ms: int | None = None
        self.cause = cause

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (
                type(self),
                (str(self),),
                {"phase": self.phase, "item_count": self.item_count, "batch_id": self.batch_id},
            ),
        )


class TaskNotFoundError(TriggerError):
    """No task with that id is defined."""


class PayloadValidationError(TriggerError):
    """A ``schema_task`` payload failed its schema at trigger time."""

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self),))


class RunNotFoundError(TriggerError):
    """No run with that id exists."""


class QueueNotFoundError(TriggerError):
    """No queue with that name is defined (in code, or by a trigger's dynamic queue)."""


class TokenNotFoundError(TriggerError):
    """No waitpoint token with that id exists."""


class ScheduleNotFoundError(TriggerError):
    """No schedule with that id exists."""


class ConcurrentWaitError(TriggerError):
    """Two durable waits were outstanding at once in one run (TASK_DID_CONCURRENT_WAIT)."""


class NonDeterminismError(TriggerError):
    """Replay met a different durable operation than the journal recorded at that position."""


class ConfigurationError(TriggerError):
    """Settings are invalid. ``problems`` lists every one of them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"celery-trigger configuration is invalid:\n{lines}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.problems,))


class StoreUnavailableError(TriggerError):
    """The run store (Redis) could not be reached or answered with an error."""


class PublishError(TriggerError):
    """The broker did not take a new run's message. The run was written first, so it is
    marked ``SYSTEM_FAILURE`` (error ``PUBLISH_FAILED``) and never executes: a caller may
    trigger again, with or without the same idempotency key."""


class InvalidRunStateError(TriggerError):
    """The run's current status does not allow the operation (e.g. reschedule of a QUEUED run)."""


class AuthenticationError(TriggerError):
    """A public access token is missing, malformed, tampered with, expired, or a single-use
    token that was used already (HTTP 401)."""


class PermissionDeniedError(TriggerError):
    """A valid public access token whose scopes do not cover the request (HTTP 403)."""


def _rebuild(
    cls: type[BaseException], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> BaseException:
    return cls(*args, **kwargs)


__all__ = [
    "AbortTaskRunError",
    "AuthenticationError",
    "BatchTriggerError",
    "ConcurrentWaitError",
    "ConfigurationError",
    "InvalidRunStateError",
    "NonDeterminismError",
    "PayloadValidationError",
    "PermissionDeniedError",
    "RunNotFoundError",
    "ScheduleNotFoundError",
    "StoreUnavailableError",
    "SubtaskUnwrapError",
    "TaskNotFoundError",
    "TaskRunError",
    "TokenNotFoundError",
    "TriggerError",
    "WaitpointTimeoutError",
]
