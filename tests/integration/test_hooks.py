"""Lifecycle hooks against real Redis and a real worker: order, error rules, init, config hooks
(SEMANTICS §1.5, TASK-19..TASK-23, CFG-5). Task ids start with ``hk-``.

Every hook notes ``"<who> <kind>"`` under the run id; global hooks are registered in the test
body with ``ct.tasks.*`` (the autouse fixture clears them afterwards).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import celery_trigger as ct
from celery_trigger.status import RunStatus

from .conftest import Engine, wait_for_status

_notes: dict[str, list[Any]] = {}


def note(run_id: str, item: Any) -> None:
    _notes.setdefault(run_id, []).append(item)


def notes(run_id: str) -> list[Any]:
    return list(_notes.get(run_id, []))


def recorder(label: str, returns: Any = None) -> Callable[..., Any]:
    """A hook that notes ``label`` (and the attempt number) and returns ``returns``."""

    def hook(**kw: Any) -> Any:
        note(kw["ctx"].run.id, label)
        return returns

    hook.__qualname__ = f"recorder[{label}]"  # distinct global hook ids
    return hook


def middleware(label: str) -> Callable[..., Any]:
    def mw(payload: Any, *, ctx: ct.Context, next: Callable[[], Any]) -> None:
        note(ctx.run.id, f"{label} middleware before")
        next()
        note(ctx.run.id, f"{label} middleware after")

    mw.__qualname__ = f"middleware[{label}]"
    return mw


def _task_hooks() -> dict[str, Any]:
    kinds = (
        "init",
        "on_start",
        "on_start_attempt",
        "on_success",
        "on_failure",
        "on_complete",
        "cleanup",
        "catch_error",
    )
    return {kind: recorder(f"task {kind}") for kind in kinds} | {"middleware": middleware("task")}


def _register_globals(*kinds: str) -> None:
    for kind in kinds:
        if kind == "middleware":
            ct.tasks.middleware(middleware("global"))
        else:
            getattr(ct.tasks, kind)(recorder(f"global {kind}"))


def _succeeds(payload: Any, ctx: ct.Context) -> str:
    note(ctx.run.id, "run")
    return "ok"


def _fails_until(payload: dict[str, Any], ctx: ct.Context) -> str:
    note(ctx.run.id, f"run {ctx.attempt.number}")
    if ctx.attempt.number < payload.get("succeed_on", 99):
        raise RuntimeError(f"attempt {ctx.attempt.number} failed")
    return "ok"


_FAST = {"max_attempts": 3, "min_timeout_in_ms": 50, "randomize": False}
everything = ct.task(id="hk-everything", run=_succeeds, **_task_hooks())


def _attempt_label(kind: str) -> Callable[..., Any]:
    def hook(**kw: Any) -> None:
        extra = ""
        if kind == "on_complete":  # §1.5: {ok: True, data: output} | {ok: False, error}
            result = kw["result"]
            extra = (
                f" ok=True data={result['data']}"
                if result["ok"]
                else f" ok=False error={result['error']}"
            )
        note(kw["ctx"].run.id, f"{kind} {kw['ctx'].attempt.number}{extra}")

    return hook


per_attempt = ct.task(
    id="hk-per-attempt",
    run=_fails_until,
    retry={**_FAST, "max_attempts": 2},
    **{
        k: _attempt_label(k)
        for k in (
            "on_start",
            "on_start_attempt",
            "on_success",
            "on_failure",
            "on_complete",
            "cleanup",
        )
    },
)


def _raise(message: str) -> Callable[..., Any]:
    def hook(**kw: Any) -> None:
        note(kw["ctx"].run.id, message)
        raise RuntimeError(message)

    return hook


def _raise_on_first(message: str) -> Callable[..., Any]:
    def hook(**kw: Any) -> None:
        if kw["ctx"].attempt.number == 1:
            note(kw["ctx"].run.id, message)
            raise RuntimeError(message)

    return hook


bad_on_success = ct.task(
    id="hk-bad-on-success",
    run=_succeeds,
    retry=_FAST,
    on_success=recorder("task on_success"),
    on_complete=recorder("task on_complete"),
)
bad_start_attempt = ct.task(
    id="hk-bad-start-attempt",
    run=_fails_until,
    retry=_FAST,
    on_start_attempt=_raise_on_first("on_start_attempt raised"),
    catch_error=recorder("task catch_error"),
)
bad_cleanup = ct.task(
    id="hk-bad-cleanup", run=_fails_until, retry=_FAST, cleanup=_raise_on_first("cleanup raised")
)
always_bad_cleanup = ct.task(
    id="hk-always-bad-cleanup",
    run=_fails_until,
    retry={**_FAST, "max_attempts": 1},
    cleanup=_raise("cleanup raised"),
)
guarded = ct.task(
    id="hk-guarded",
    run=_fails_until,
    retry={**_FAST, "max_attempts": 2},
    catch_error=recorder("task catch_error"),
    on_failure=recorder("task on_failure"),
)


@ct.task(id="hk-init", init=lambda **_: {"a": 3})
def with_init(payload: Any, ctx: ct.Context, *, init: dict[str, Any]) -> dict[str, Any]:
    note(ctx.run.id, ("run init", dict(init)))
    return init


@ct.task(
    id="hk-init-hooks",
    init=lambda **_: {"a": 3},
    on_success=lambda *, ctx, init, **_: note(ctx.run.id, ("on_success init", dict(init))),
)
def init_for_hooks(payload: Any) -> None:
    return None


failing_a = ct.task(
    id="hk-failing-a",
    run=_fails_until,
    retry={**_FAST, "max_attempts": 2},
    on_failure=recorder("task on_failure"),
)
failing_b = ct.task(
    id="hk-failing-b",
    run=_fails_until,
    retry={**_FAST, "max_attempts": 1},
    on_failure=recorder("task on_failure"),
)


# order --------------------------------------------------------------------------------------


def test_hooks_run_in_the_documented_order_on_a_successful_attempt(engine: Engine) -> None:
    """TASK-19, §1.5: with every hook defined globally and on the task, a successful first
    attempt runs global before task hooks, middleware around everything, no failure hooks."""
    # Given global hooks of every kind and a task with its own hook of every kind
    _register_globals(
        "middleware",
        "init",
        "on_start",
        "on_start_attempt",
        "on_success",
        "on_failure",
        "on_complete",
        "cleanup",
        "catch_error",
    )
    with engine.worker():
        # When a run succeeds on its first attempt
        handle = everything.trigger({})
        run = wait_for_status(handle.id)
    # Then the hooks ran in this exact order
    assert run.status is RunStatus.COMPLETED
    assert notes(handle.id) == [
        "global middleware before",
        "task middleware before",
        "global init",
        "task init",
        "global on_start",
        "task on_start",
        "global on_start_attempt",
        "task on_start_attempt",
        "run",
        "global on_success",
        "task on_success",
        "global on_complete",
        "task on_complete",
        "global cleanup",
        "task cleanup",
        "task middleware after",
        "global middleware after",
    ]


def test_only_cleanup_follows_a_retried_failure_and_failure_hooks_the_last(engine: Engine) -> None:
    """TASK-20: after a failing attempt that will be retried only cleanup runs; after the
    final failing attempt on_failure, then on_complete(ok=False), then cleanup."""
    # Given a 2-attempt task that always fails
    with engine.worker():
        # When it runs out of attempts
        handle = per_attempt.trigger({})
        wait_for_status(handle.id, "FAILED")
    # Then attempt 1 ended with cleanup alone and attempt 2 with the failure hooks
    assert notes(handle.id) == [
        "on_start 1",
        "on_start_attempt 1",
        "run 1",
        "cleanup 1",
        "on_start_attempt 2",
        "run 2",
        "on_failure 2",
        "on_complete 2 ok=False error=attempt 2 failed",
        "cleanup 2",
    ]


def test_on_start_runs_once_and_on_start_attempt_every_attempt(engine: Engine) -> None:
    """TASK-21 (the resume part belongs to the durable-wait tests): on_start runs on attempt 1
    only; on_start_attempt runs on every attempt; success hooks run once at the end."""
    # Given a 2-attempt task that succeeds on attempt 2
    with engine.worker():
        # When it runs
        handle = per_attempt.trigger({"succeed_on": 2})
        run = wait_for_status(handle.id, "COMPLETED")
    # Then on_start ran once and on_start_attempt twice
    assert run.attempt_count == 2
    assert notes(handle.id) == [
        "on_start 1",
        "on_start_attempt 1",
        "run 1",
        "cleanup 1",
        "on_start_attempt 2",
        "run 2",
        "on_success 2",
        "on_complete 2 ok=True data=ok",
        "cleanup 2",
    ]


def test_global_hooks_are_replaced_by_id_and_lambdas_do_not_collide(engine: Engine) -> None:
    """§1.5: a global hook registered again under the same id replaces the earlier one; two
    different anonymous functions (ids from their source text) are both kept."""
    # Given a named hook registered twice and two different lambdas
    ct.tasks.on_success("named", recorder("first named"))
    ct.tasks.on_success("named", recorder("second named"))
    ct.tasks.on_success(lambda *, ctx, **_: note(ctx.run.id, "lambda one"))
    ct.tasks.on_success(lambda *, ctx, **_: note(ctx.run.id, "lambda two"))
    with engine.worker():
        # When a run succeeds
        handle = everything.trigger({})
        wait_for_status(handle.id, "COMPLETED")
    # Then the replacement and both lambdas ran, the replaced hook did not
    ran = [n for n in notes(handle.id) if "named" in n or "lambda" in n]
    assert ran == ["second named", "lambda one", "lambda two"]


# errors in hooks ----------------------------------------------------------------------------


def test_an_error_in_on_success_does_not_change_the_outcome(engine: Engine) -> None:
    """TASK-22, §1.5: an exception in on_success is swallowed: the run is COMPLETED after one
    attempt, and the remaining on_success hooks and on_complete still run."""
    # Given a global on_success that raises, before the task's own on_success
    ct.tasks.on_success(_raise("global on_success raised"))
    with engine.worker():
        # When the run succeeds
        handle = bad_on_success.trigger({})
        run = wait_for_status(handle.id)
    # Then it completed with its output and every later hook ran
    assert run.status is RunStatus.COMPLETED and run.attempt_count == 1 and run.output == "ok"
    assert notes(handle.id) == [
        "run",
        "global on_success raised",
        "task on_success",
        "task on_complete",
    ]


def test_an_error_in_on_start_attempt_fails_the_attempt_and_is_retried(engine: Engine) -> None:
    """TASK-22, §1.5: an exception in on_start_attempt fails the attempt like a run error (it
    reaches catch_error and is retried per policy); the run function is not called."""
    # Given a task whose on_start_attempt raises on attempt 1
    with engine.worker():
        # When it runs
        handle = bad_start_attempt.trigger({"succeed_on": 1})
        run = wait_for_status(handle.id)
    # Then attempt 1 failed before run, was offered to catch_error, and attempt 2 completed
    assert run.status is RunStatus.COMPLETED and run.attempt_count == 2
    assert notes(handle.id) == ["on_start_attempt raised", "task catch_error", "run 2"]


def test_an_error_in_cleanup_fails_the_attempt(engine: Engine) -> None:
    """§1.5: errors in cleanup propagate and fail the attempt; it is retried per policy."""
    # Given a task that succeeds but whose cleanup raises on attempt 1
    with engine.worker():
        # When it runs
        handle = bad_cleanup.trigger({"succeed_on": 1})
        run = wait_for_status(handle.id)
    # Then attempt 1 counted as failed and attempt 2 completed
    assert run.status is RunStatus.COMPLETED and run.attempt_count == 2
    assert notes(handle.id) == ["run 1", "cleanup raised", "run 2"]


def test_a_cleanup_error_on_the_last_attempt_fails_the_run(engine: Engine) -> None:
    """§1.5: a cleanup error on the only attempt ends the run FAILED with that error."""
    # Given a one-attempt task whose run succeeds and whose cleanup always raises
    with engine.worker():
        # When it runs
        handle = always_bad_cleanup.trigger({"succeed_on": 1})
        run = wait_for_status(handle.id)
    # Then the run failed with the cleanup error
    assert run.status is RunStatus.FAILED and run.attempt_count == 1
    assert run.error is not None and run.error.message == "cleanup raised"


def test_a_middleware_error_is_retried_without_catch_error_or_on_failure(engine: Engine) -> None:
    """§1.5, D-3: an error thrown by middleware fails the attempt with TASK_MIDDLEWARE_ERROR;
    catch_error and on_failure are not called; the policy retries it."""

    # Given a global middleware that raises before next() on attempt 1
    def flaky_middleware(payload: Any, *, ctx: ct.Context, next: Callable[[], Any]) -> None:
        if ctx.attempt.number == 1:
            note(ctx.run.id, "middleware raised")
            raise RuntimeError("middleware broke")
        next()

    ct.tasks.middleware(flaky_middleware)
    with engine.worker():
        # When a 2-attempt task runs
        handle = guarded.trigger({"succeed_on": 1})
        run = wait_for_status(handle.id)
    # Then attempt 1 failed inside middleware only and attempt 2 completed
    assert run.status is RunStatus.COMPLETED and run.attempt_count == 2
    assert notes(handle.id) == ["middleware raised", "run 2"]


def test_a_middleware_error_on_every_attempt_fails_the_run(engine: Engine) -> None:
    """§1.5, D-3: when the attempts run out the run is FAILED with TASK_MIDDLEWARE_ERROR, and
    neither catch_error nor on_failure ran at any point."""

    # Given a global middleware that always raises
    def broken_middleware(payload: Any, *, ctx: ct.Context, next: Callable[[], Any]) -> None:
        note(ctx.run.id, f"middleware raised {ctx.attempt.number}")
        raise RuntimeError("middleware broke")

    ct.tasks.middleware(broken_middleware)
    with engine.worker():
        # When a 2-attempt task runs
        handle = guarded.trigger({})
        run = wait_for_status(handle.id)
    # Then both attempts failed in middleware and the run failed with the internal code
    assert run.status is RunStatus.FAILED and run.attempt_count == 2
    assert run.error is not None and run.error.name == "TASK_MIDDLEWARE_ERROR"
    assert run.error.message == "middleware broke"
    assert notes(handle.id) == ["middleware raised 1", "middleware raised 2"]


# init and config hooks ----------------------------------------------------------------------


def test_init_results_are_merged_and_reach_the_run_function(engine: Engine) -> None:
    """TASK-23: init results {a:1} and {b:2} from two globals and {a:3} from the task reach
    the run function (its ``init`` keyword) as {a:3, b:2}."""
    # Given two named global init hooks and a task init
    ct.tasks.init("first", lambda **_: {"a": 1})
    ct.tasks.init("second", lambda **_: {"b": 2})
    with engine.worker():
        # When the run executes
        handle = with_init.trigger({})
        run = wait_for_status(handle.id, "COMPLETED")
    # Then the run function saw the shallow merge, task keys winning
    assert notes(handle.id) == [("run init", {"a": 3, "b": 2})]
    assert run.output == {"a": 3, "b": 2}


def test_init_results_reach_the_later_hooks(engine: Engine) -> None:
    """TASK-23, §1.5 step 3: the merged init is passed as ``init`` to the later hooks."""
    # Given two global inits and a task init, and an on_success hook that notes its init
    ct.tasks.init("first", lambda **_: {"a": 1})
    ct.tasks.init("second", lambda **_: {"b": 2})
    with engine.worker():
        # When the run executes
        handle = init_for_hooks.trigger({})
        wait_for_status(handle.id, "COMPLETED")
    # Then on_success received the merged init
    assert notes(handle.id) == [("on_success init", {"a": 3, "b": 2})]


def test_config_on_failure_runs_first_for_every_final_failure(make_engine: Any) -> None:
    """CFG-5: a config-level on_failure runs for every task's final failure (not for retried
    attempts), before the global and the task's own on_failure."""
    # Given a config on_failure, a global on_failure and two failing tasks with their own
    engine = make_engine(on_failure=recorder("config on_failure"))
    ct.tasks.on_failure(recorder("global on_failure"))
    with engine.worker():
        # When both tasks fail (the first after two attempts)
        first = failing_a.trigger({})
        second = failing_b.trigger({})
        wait_for_status(first.id, "FAILED")
        wait_for_status(second.id, "FAILED")
    # Then each final failure ran config, global, task on_failure, in that order, once
    for handle, runs in ((first, ["run 1", "run 2"]), (second, ["run 1"])):
        assert notes(handle.id) == [
            *runs,
            "config on_failure",
            "global on_failure",
            "task on_failure",
        ]


def test_config_hooks_run_before_global_hooks_of_the_same_kind(make_engine: Any) -> None:
    """§15.1 (config init, on_start, on_success are global hooks registered first), §1.5."""
    # Given config hooks and global hooks of the same kinds
    engine = make_engine(
        init=recorder("config init"),
        on_start=recorder("config on_start"),
        on_success=recorder("config on_success"),
    )
    _register_globals("init", "on_start", "on_success")
    with engine.worker():
        # When a run succeeds
        handle = everything.trigger({})
        wait_for_status(handle.id, "COMPLETED")
    # Then every config hook ran just before the global hook of its kind
    ran = [n for n in notes(handle.id) if n.startswith(("config", "global"))]
    assert ran == [
        "config init",
        "global init",
        "config on_start",
        "global on_start",
        "config on_success",
        "global on_success",
    ]
