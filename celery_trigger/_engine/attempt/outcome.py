"""How an attempt ends: the outcome value the run phase returns, and the control-flow
exceptions the Celery layer maps (``DropDelivery`` → ``Ignore``, ``EndAttempt`` → a RETRY
state without a message, ``AttemptFailed`` → FAILURE)."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from typing import Any

from ..._vocab import RunStatus
from ...errors import TaskRunError
from ..journal import CONCURRENT_WAIT_MESSAGE

#: The error of a run that broke the one-wait rule (SEMANTICS §3.4).
CONCURRENT_WAIT_ERROR = "TASK_DID_CONCURRENT_WAIT"


class DropDelivery(BaseException):
    """This delivery must do nothing (duplicate, final or cancelled run)."""


class EndAttempt(BaseException):
    """The attempt ended without a final outcome; the run continues later (no message)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AttemptFailed(Exception):
    """Raised to Celery when a run ends failed, so the task shows FAILURE like any task."""

    def __init__(self, error: TaskRunError | str) -> None:
        # A str when a result backend rebuilds the exception from its stored message.
        if isinstance(error, str):
            name, _, message = error.partition(": ")
            error = TaskRunError(name if message else "Error", message or name)
        super().__init__(f"{error.name}: {error.message}")
        self.error = error

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable: the prefork pool sends the exception back to the main process.
        return (type(self), (self.error,))


@dataclass
class Outcome:
    """What the run phase decided: ``kind`` is success, retry, fail or park."""

    kind: str
    output: Any = None
    reason: str = ""
    error: BaseException | None = None
    error_record: TaskRunError | None = None
    status: RunStatus = RunStatus.FAILED
    delay_ms: float = 0.0

    @property
    def run_error(self) -> TaskRunError:
        """The error to store for a failed or retried attempt."""
        if self.error_record is not None:
            return self.error_record
        assert self.error is not None
        return error_record(self.error)


def error_record(exc: BaseException, name: str | None = None) -> TaskRunError:
    """A stored error for an exception (its traceback as the stack trace)."""
    if isinstance(exc, TaskRunError):
        return exc
    stack = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return TaskRunError(name or type(exc).__name__, str(exc), stack)


def failure(name: str, message: str, status: RunStatus = RunStatus.FAILED) -> Outcome:
    """A failed outcome with an engine error (not a user exception)."""
    return Outcome("fail", error_record=TaskRunError(name, message), status=status)


def concurrent_wait_failure() -> Outcome:
    return failure(CONCURRENT_WAIT_ERROR, CONCURRENT_WAIT_MESSAGE, RunStatus.SYSTEM_FAILURE)
