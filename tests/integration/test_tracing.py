# ruff: noqa: F811  (pytest fixtures imported from schedule_helpers)
"""Traces with the real OpenTelemetry SDK and ``opentelemetry-instrumentation-celery``
against real workers (issue 13 item 2). Task ids start with ``tr-``.

The SDK's tracer provider is global and can be set once per process: the module installs
one (or reuses the one installed) with an in-memory exporter, and instruments Celery only
for the duration of each test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import current_app
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

import celery_trigger as ct
from celery_trigger._engine.schedules import fire
from celery_trigger._store.base import schedule_timer

from .conftest import Engine, wait_for, wait_for_status
from .schedule_helpers import define, schedule_clock  # noqa: F401  (fixtures)

EXPORTER = InMemorySpanExporter()
_installed: list[bool] = []


@ct.task(id="tr-child")
def tr_child(payload: dict) -> int:
    ct.logger.info("child running")
    return int(payload["n"]) + 1


@ct.task(id="tr-parent")
def tr_parent(payload: dict) -> int:
    return int(tr_child.trigger_and_wait({"n": payload["n"]}).unwrap()) * 10


@ct.task(id="tr-fanout")
def tr_fanout(payload: dict) -> int:
    results = tr_child.batch_trigger_and_wait([{"payload": {"n": n}} for n in range(2)])
    return sum(int(r.unwrap()) for r in results)


@pytest.fixture
def traced(request: pytest.FixtureRequest, make_engine: Any, redis_server: str) -> Iterator[Engine]:
    """An engine whose app is Celery's current app (the instrumentation finds tasks by name
    there), Celery instrumented, the exporter empty."""
    if not _installed:
        provider = trace.get_tracer_provider()
        if not isinstance(provider, TracerProvider):
            provider = TracerProvider()
            trace.set_tracer_provider(provider)
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        _installed.append(True)
    overrides = dict(getattr(request, "param", {}) or {})
    if overrides.get("redis_url") == "STORE_DB_1":  # store and broker apart: send_task
        overrides["redis_url"] = f"{redis_server}/1"
    engine = make_engine(**overrides)
    previous = current_app._get_current_object()
    engine.app.set_current()
    EXPORTER.clear()
    instrumentor = CeleryInstrumentor()
    instrumentor.instrument()
    try:
        yield engine
    finally:
        instrumentor.uninstrument()
        previous.set_current()


def _spans(trace_id: int) -> list[ReadableSpan]:
    return [s for s in EXPORTER.get_finished_spans() if s.context.trace_id == trace_id]


def _named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return sorted((s for s in spans if s.name == name), key=lambda s: s.start_time or 0)


def _parent(spans: list[ReadableSpan], span: ReadableSpan) -> ReadableSpan:
    assert span.parent is not None, f"{span.name} has no parent"
    found = [s for s in spans if s.context.span_id == span.parent.span_id]
    assert found, f"the parent of {span.name} was not exported"
    return found[0]


@pytest.mark.parametrize(
    "traced", [{}, {"redis_url": "STORE_DB_1"}], indirect=True, ids=["direct", "send_task"]
)
def test_parent_child_park_and_resume_form_one_trace(traced: Engine) -> None:
    """Issue 13 §2: trigger span → Celery's apply_async → run/<task> carrying ct.*; the
    child joins through the message; the resumed attempt continues the same trace."""
    tracer = trace.get_tracer("tests")
    # Given a traced caller that triggers a parent which waits for a child
    with traced.worker(concurrency=2):
        with tracer.start_as_current_span("caller") as root:
            handle = tr_parent.trigger({"n": 4})
        run = wait_for_status(handle.id, timeout=30)
        assert run.output == 50
        trace_id = root.get_span_context().trace_id
        # Then every span of both runs is in the caller's trace, the parent's two attempts too
        wait_for(lambda: len(_named(_spans(trace_id), "run/tr-parent")) == 2, timeout=10)
    spans = _spans(trace_id)
    trigger_parent = _named(spans, "trigger tr-parent")[0]
    assert _parent(spans, trigger_parent).name == "caller"
    first, resumed = _named(spans, "run/tr-parent")
    # the first delivery: trigger → apply_async → run, with the run's attributes
    publish = _parent(spans, first)
    assert publish.name == "apply_async/tr-parent"
    assert _parent(spans, publish) is trigger_parent
    attrs = dict(first.attributes or {})
    assert attrs["ct.run_id"] == handle.id and attrs["ct.task_id"] == "tr-parent"
    assert attrs["ct.attempt"] == 1 and attrs["ct.is_replay"] is False
    assert attrs["ct.queue"] == "task/tr-parent" and attrs["ct.machine"]
    assert tuple(attrs["ct.tags"]) == ()
    # the child: triggered inside the parent's attempt, run in the same trace
    trigger_child = _named(spans, "trigger tr-child")[0]
    assert _parent(spans, trigger_child) is first
    child_run = _named(spans, "run/tr-child")[0]
    assert _parent(spans, _parent(spans, child_run)) is trigger_child
    assert dict(child_run.attributes or {})["ct.run_id"] == run.children[0]
    # the resume: published under the run's saved context, not the child's span
    resume_publish = _parent(spans, resumed)
    assert resume_publish.name == "apply_async/tr-parent"
    assert _parent(spans, resume_publish) is trigger_parent
    assert dict(resumed.attributes or {})["ct.run_id"] == handle.id
    # And the child's log entry names the trace and its own span
    entry = ct.runs.logs(run.children[0])[0]
    assert entry.trace_id == format(trace_id, "032x")
    assert entry.span_id == format(child_run.context.span_id, "016x")


def test_batch_items_join_the_trigger_trace(traced: Engine) -> None:
    """Issue 13 §2: a batch trigger is one span; each item's run is in its trace."""
    with traced.worker(concurrency=3):
        handle = tr_fanout.trigger({})
        run = wait_for_status(handle.id, timeout=30)
    assert run.output == 3
    wait_for(
        lambda: (
            any(s.name == "run/tr-fanout" for s in EXPORTER.get_finished_spans())
            and len([s for s in EXPORTER.get_finished_spans() if s.name == "run/tr-child"]) == 2
        ),
        timeout=10,
    )
    fanout = _named(list(EXPORTER.get_finished_spans()), "run/tr-fanout")[0]
    spans = _spans(fanout.context.trace_id)
    batch = _named(spans, "batch_trigger tr-child")[0]
    assert dict(batch.attributes or {})["ct.batch.size"] == 2
    children = _named(spans, "run/tr-child")
    assert len(children) == 2
    for child in children:
        assert _parent(spans, _parent(spans, child)) is batch


def test_a_schedule_fire_starts_a_new_trace(
    traced: Engine, define: Callable[..., Any], schedule_clock: Callable[..., Any]
) -> None:
    """Issue 13 §2: each occurrence is its own trace, whose root span names the schedule."""
    # Given a schedule whose occurrence is due (the schedule clock is past it)
    schedule_clock("2030-01-01T10:00:30")
    made = ct.schedules.create(task=define(), cron="* * * * *", deduplication_key="traced")
    traced.store.remove_timers([schedule_timer(made.id)])
    schedule_clock("2030-01-01T10:01:00")
    with traced.worker(concurrency=2):
        # When it fires (as the timer service would) and a worker runs the occurrence
        fire(traced.trigger, made.id)
        run_id = wait_for(lambda: [r.id for r in ct.runs.list(task_identifier=made.task)])[0]
        wait_for_status(run_id, timeout=15)
        wait_for(lambda: _named(list(EXPORTER.get_finished_spans()), f"run/{made.task}"), 10)
    # Then the run's span descends from a root span named after the schedule
    root = _named(list(EXPORTER.get_finished_spans()), f"schedule {made.id}")[0]
    assert root.parent is None
    assert dict(root.attributes or {})["ct.schedule_id"] == made.id
    spans = _spans(root.context.trace_id)
    run_span = _named(spans, f"run/{made.task}")[0]
    assert dict(run_span.attributes or {})["ct.run_id"] == run_id
