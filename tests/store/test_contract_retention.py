"""The Store contract for retention (``RetentionStore``): a final run arms a ``retire``
timer ``retention_ms`` after it ends; ``retire_run`` deletes a final run with its children,
journal and index entries and never touches a live run. Both stores."""

from __future__ import annotations

from celery_trigger._store.base import Store
from celery_trigger._vocab import TimerKind

from .contract import LEASE, NOW, claim, create


def test_a_final_transition_arms_the_retire_timer(store: Store) -> None:
    """Issue 12 item 5: ending a run (finish or transition) arms retire at end + retention."""
    # Given a retention of 2 s and two runs, one executing
    store.retention_ms = 2000
    create(store, "run_a")
    create(store, "run_b")
    assert claim(store, "run_a", "tok").action == "ok"
    # When one finishes and the other is cancelled
    store.finish_attempt("run_a", "tok", "COMPLETED", NOW + 10, fields={})
    store.transition("run_b", NOW + 20, allowed="*", status="CANCELED")
    # Then each has a retire timer due retention after it ended
    assert store.timer_due(TimerKind.RETIRE.member("run_a")) == NOW + 10 + 2000
    assert store.timer_due(TimerKind.RETIRE.member("run_b")) == NOW + 20 + 2000


def test_no_retire_timer_without_retention_or_for_live_statuses(store: Store) -> None:
    """API.md: retention None keeps runs forever; a non-final change arms nothing."""
    # Given retention None, then 2 s
    store.retention_ms = None
    create(store, "run_a")
    store.transition("run_a", NOW + 1, allowed="*", status="CANCELED")
    store.retention_ms = 2000
    create(store, "run_b", status="DELAYED")
    store.transition("run_b", NOW + 1, allowed="DELAYED", status="QUEUED")
    # Then neither run has a retire timer
    assert store.timer_due(TimerKind.RETIRE.member("run_a")) is None
    assert store.timer_due(TimerKind.RETIRE.member("run_b")) is None


def test_retire_deletes_a_final_run_and_its_index_entries(store: Store) -> None:
    """Issue 12 item 5: the record, children and listing entries (all, by tag) go; a live
    run is left alone."""
    # Given a final tagged parent with a child, and a live run
    store.retention_ms = 2000
    create(store, "run_p", tags=["x"], fields={"tags": '["x"]'})
    create(store, "run_live", tags=["x"], fields={"tags": '["x"]'})
    assert claim(store, "run_p", "tok").action == "ok"
    store.finish_attempt("run_p", "tok", "COMPLETED", NOW + LEASE // 2, fields={})
    # When both are retired
    gone, kept = store.retire_run("run_p"), store.retire_run("run_live")
    # Then only the final one is deleted, from every listing
    assert (gone, kept) == (True, False)
    assert store.get_run("run_p") is None and store.get_run("run_live") is not None
    assert [r for r, _ in store.list_run_ids(index=None, before=None, count=10)] == ["run_live"]
    assert [r for r, _ in store.list_run_ids(index="x", before=None, count=10)] == ["run_live"]
    assert store.retire_run("run_p") is False  # a second retire (timer retried) is a no-op
