"""``trigger_on_commit`` on PostgreSQL: triggers after the transaction commits, never on
rollback; the worker sees the committed rows."""

from __future__ import annotations

import uuid

import pytest

import celery_trigger as ct
from tests.django.conftest import CtApp, wait_for_final


def _runs_tagged(tag: str) -> list[ct.Run]:
    return list(ct.runs.list(tag=tag, limit=10))


def test_trigger_on_commit_runs_after_commit_and_sees_the_row(ctapp: CtApp) -> None:
    """DJ-3: the run is created only once the transaction commits; the task reads the row."""
    from django.db import transaction

    from tests.django.testapp.models import Order
    from tests.django.testapp.tasks import record_order

    tag = f"order-{uuid.uuid4().hex[:8]}"
    with ctapp.worker():
        # Given an order created inside a transaction, with a deferred trigger
        with transaction.atomic():
            order = Order.objects.create(item="book")
            record_order.trigger_on_commit({"order_id": order.pk}, tags=[tag])
            # Then nothing is triggered before the commit
            assert _runs_tagged(tag) == []
        # When the transaction commits, Then exactly one run exists and it sees the order
        (run,) = _runs_tagged(tag)
        final = wait_for_final(run.id)
    assert final.status == ct.RunStatus.COMPLETED
    assert final.output == {"item": "book"}


def test_trigger_on_commit_never_triggers_on_rollback(ctapp: CtApp) -> None:
    """DJ-3: a rolled-back transaction triggers nothing."""
    from django.db import transaction

    from tests.django.testapp.models import Order
    from tests.django.testapp.tasks import record_order

    tag = f"order-{uuid.uuid4().hex[:8]}"
    # Given a transaction that creates an order and defers a trigger, When it rolls back
    with pytest.raises(RuntimeError), transaction.atomic():
        order = Order.objects.create(item="lamp")
        record_order.trigger_on_commit({"order_id": order.pk}, tags=[tag])
        raise RuntimeError("payment declined")
    # Then no run and no order exist
    assert _runs_tagged(tag) == []
    assert not Order.objects.filter(item="lamp").exists()


def test_tasks_trigger_on_commit_by_id_in_nested_savepoints(ctapp: CtApp) -> None:
    """DJ-3: by task id; a rolled-back savepoint drops its trigger, the outer one stays."""
    from django.db import transaction

    tag = f"nested-{uuid.uuid4().hex[:8]}"
    # Given an outer transaction with one deferred trigger and an inner savepoint with another
    with transaction.atomic():
        ct.tasks.trigger_on_commit("dj-echo", {"which": "outer"}, tags=[tag])
        with pytest.raises(ValueError), transaction.atomic():
            ct.tasks.trigger_on_commit("dj-echo", {"which": "inner"}, tags=[tag])
            raise ValueError("inner rolls back")
        assert _runs_tagged(tag) == []
    # Then only the outer trigger happened, with its options
    (run,) = _runs_tagged(tag)
    assert run.payload == {"which": "outer"}
    assert run.task_identifier == "dj-echo"


def test_trigger_on_commit_outside_a_transaction_triggers_at_once(ctapp: CtApp) -> None:
    """DJ-3: in autocommit mode there is nothing to wait for (Django's on_commit semantics)."""
    tag = f"auto-{uuid.uuid4().hex[:8]}"
    ct.tasks.trigger_on_commit("dj-echo", 1, tags=[tag])
    assert [r.payload for r in _runs_tagged(tag)] == [1]


def test_trigger_on_commit_without_the_django_app_is_a_configuration_error(
    ctapp: CtApp,
) -> None:
    """DJ-3: the core alone has no transaction to wait for: a clear ConfigurationError."""
    from django.db import transaction

    from celery_trigger import _on_commit

    _on_commit.uninstall()
    try:
        with pytest.raises(ct.ConfigurationError, match="celery_trigger_django"):
            ct.tasks.trigger_on_commit("dj-echo", 1)
    finally:
        _on_commit.install(transaction.on_commit)
