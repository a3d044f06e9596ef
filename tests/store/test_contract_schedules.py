"""The Store contract for schedules (DESIGN §8): put/get/list/delete/advance on both stores.

A schedule is a hash plus one ``sched|<id>`` timer member due at its next occurrence (wall
ms). ``put_schedule`` creates or changes it and re-arms the timer only when the schedule is
new or its cron or timezone changed; ``advance_schedule`` is a compare-and-set on
``next_run``; both refuse a schedule of the wrong type (declarative schedules cannot be
changed through the API, SCHED-11).
"""

from __future__ import annotations

from celery_trigger._store.base import Store, schedule_timer

from .contract import NOW

MINUTE = 60_000


def put(
    store: Store,
    sid: str = "sched_a",
    *,
    mode: str = "upsert",
    kind: str = "IMPERATIVE",
    cron: str = "* * * * *",
    tz: str = "UTC",
    next_run: int | None = NOW + MINUTE,
    extra: dict[str, str] | None = None,
    now: int = NOW,
) -> tuple[str, dict[str, str] | None]:
    fields = {"cron": cron, "timezone": tz, **(extra or {})}
    return store.put_schedule(
        sid,
        now,
        mode=mode,
        require_type=kind,
        create_fields={"id": sid, "type": kind, "task": "t.tick", "active": "1"},
        fields=fields,
        next_run=None if next_run is None else (next_run, next_run + 5),
    )


def test_put_creates_the_schedule_indexes_it_and_arms_its_timer(store: Store) -> None:
    """SCHED-5 (store side): a new schedule is written with its first occurrence armed."""
    # Given no schedule
    # When one is put
    outcome, record = put(store, extra={"external_id": "u1"})
    # Then it is created with every field, listed, and its timer is due at the wall time
    assert outcome == "created"
    assert (
        record
        == store.get_schedule("sched_a")
        == {
            "id": "sched_a",
            "type": "IMPERATIVE",
            "task": "t.tick",
            "active": "1",
            "created": str(NOW),
            "updated": str(NOW),
            "cron": "* * * * *",
            "timezone": "UTC",
            "external_id": "u1",
            "next_run": str(NOW + MINUTE),
        }
    )
    assert store.list_schedules(0, 10) == ([record], 1)
    assert store.timer_due(schedule_timer("sched_a")) == NOW + MINUTE + 5


def test_put_again_updates_in_place_keeping_create_only_fields(store: Store) -> None:
    """SCHED-5: a second put of the same id updates it; the cron in effect is the new one."""
    # Given a schedule
    put(store, extra={"external_id": "u1"})
    # When it is put again with another cron, without external id, and another task
    outcome, record = store.put_schedule(
        "sched_a",
        NOW + 7,
        mode="upsert",
        require_type="IMPERATIVE",
        create_fields={"id": "sched_a", "type": "IMPERATIVE", "task": "t.other", "active": "1"},
        fields={"cron": "0 * * * *", "timezone": "UTC", "external_id": ""},
        next_run=(NOW + 60 * MINUTE, NOW + 60 * MINUTE),
    )
    # Then the same schedule changed: new cron and next run, no external id, same task
    assert outcome == "updated" and record is not None
    assert record["cron"] == "0 * * * *" and "external_id" not in record
    assert record["task"] == "t.tick" and record["created"] == str(NOW)
    assert record["next_run"] == str(NOW + 60 * MINUTE) and record["updated"] == str(NOW + 7)
    assert store.timer_due(schedule_timer("sched_a")) == NOW + 60 * MINUTE
    assert store.list_schedules(0, 10)[1] == 1


def test_put_with_the_same_cron_and_zone_leaves_the_pending_occurrence_alone(store: Store) -> None:
    """D-12: re-syncing an unchanged schedule never moves (or skips) the pending fire."""
    # Given a schedule whose next occurrence is armed
    put(store)
    # When it is put again with the same cron and zone but a later candidate occurrence
    _, record = put(store, next_run=NOW + 2 * MINUTE, extra={"description": "Every minute"})
    # Then next_run and the timer are unchanged; other fields did change
    assert record is not None and record["next_run"] == str(NOW + MINUTE)
    assert record["description"] == "Every minute"
    assert store.timer_due(schedule_timer("sched_a")) == NOW + MINUTE + 5
    # and a zone change does re-time it
    _, record = put(store, tz="Europe/Paris", next_run=NOW + 3 * MINUTE)
    assert record is not None and record["next_run"] == str(NOW + 3 * MINUTE)


def test_update_mode_needs_an_existing_schedule_and_patches_without_a_timer(store: Store) -> None:
    """SCHED-9, SCHED-10 (store side): ``update`` of a missing id writes nothing."""
    # Given no schedule
    # When it is updated
    # Then it is missing and nothing exists
    assert put(store, mode="update") == ("missing", None)
    assert store.get_schedule("sched_a") is None
    assert store.timer_due(schedule_timer("sched_a")) is None
    # Given a schedule, when only its active flag is patched
    put(store)
    outcome, record = store.put_schedule(
        "sched_a",
        NOW + 1,
        mode="update",
        require_type="IMPERATIVE",
        create_fields={},
        fields={"active": "0"},
        next_run=None,
    )
    # Then the flag changed and the occurrence did not
    assert outcome == "updated" and record is not None and record["active"] == "0"
    assert record["next_run"] == str(NOW + MINUTE)


def test_put_and_delete_refuse_a_schedule_of_another_type(store: Store) -> None:
    """SCHED-11 (store side): a declarative schedule cannot be changed as an imperative one."""
    # Given a declarative schedule
    put(store, kind="DECLARATIVE")
    # When it is updated or deleted as an imperative schedule
    refused_put = put(store, kind="IMPERATIVE", cron="0 0 * * *")
    refused_delete = store.delete_schedule("sched_a", require_type="IMPERATIVE")
    # Then both are refused and it is unchanged
    assert refused_put == ("type", {"type": "DECLARATIVE"})
    assert refused_delete == "type"
    record = store.get_schedule("sched_a")
    assert record is not None and record["cron"] == "* * * * *"


def test_delete_removes_record_index_and_timer(store: Store) -> None:
    """§10.1 ``del``: the schedule, its listing and its pending occurrence go."""
    # Given two schedules
    put(store, "sched_a")
    put(store, "sched_b", now=NOW + 1)
    # When one is deleted (twice)
    first = store.delete_schedule("sched_a", require_type="IMPERATIVE")
    second = store.delete_schedule("sched_a", require_type="")
    # Then only the other remains, and the second delete found nothing
    assert (first, second) == ("ok", "missing")
    assert store.get_schedule("sched_a") is None
    assert store.timer_due(schedule_timer("sched_a")) is None
    assert [r["id"] for r in store.list_schedules(0, 10)[0]] == ["sched_b"]


def test_list_pages_in_creation_order_with_the_total(store: Store) -> None:
    """§10.1 ``list``: offset pages in creation order and the total count."""
    # Given five schedules created one ms apart
    for i in range(5):
        put(store, f"sched_{i}", now=NOW + i)
    # When pages of two are read
    pages = [store.list_schedules(offset, 2) for offset in (0, 2, 4, 6)]
    # Then they cover every schedule once, in order, each with the total
    assert [[r["id"] for r in records] for records, _ in pages] == [
        ["sched_0", "sched_1"],
        ["sched_2", "sched_3"],
        ["sched_4"],
        [],
    ]
    assert {total for _, total in pages} == {5}


def test_advance_is_a_compare_and_set_on_the_fired_occurrence(store: Store) -> None:
    """D-12, SCHED-3, SCHED-9: one advance per occurrence; last_run only when triggered."""
    # Given a schedule whose next occurrence is NOW + 1 min
    put(store)
    # When the occurrence is advanced twice (a duplicate fire) as triggered
    first = store.advance_schedule(
        "sched_a",
        expected_ms=NOW + MINUTE,
        next_ms=NOW + 2 * MINUTE,
        due_ms=NOW + 2 * MINUTE,
        last_ms=NOW + MINUTE,
        now_ms=NOW + MINUTE,
    )
    duplicate = store.advance_schedule(
        "sched_a",
        expected_ms=NOW + MINUTE,
        next_ms=NOW + 9 * MINUTE,
        due_ms=NOW + 9 * MINUTE,
        last_ms=NOW + MINUTE,
        now_ms=NOW + MINUTE,
    )
    # Then only the first wrote: next run, last run and the re-armed timer
    assert (first, duplicate) == (True, False)
    record = store.get_schedule("sched_a")
    assert record is not None
    assert (record["next_run"], record["last_run"]) == (str(NOW + 2 * MINUTE), str(NOW + MINUTE))
    assert store.timer_due(schedule_timer("sched_a")) == NOW + 2 * MINUTE
    # When the next one is skipped (inactive), last_run keeps the last triggered occurrence
    assert store.advance_schedule(
        "sched_a",
        expected_ms=NOW + 2 * MINUTE,
        next_ms=NOW + 3 * MINUTE,
        due_ms=NOW + 3 * MINUTE,
        last_ms=None,
        now_ms=NOW + 2 * MINUTE,
    )
    record = store.get_schedule("sched_a")
    assert record is not None and record["last_run"] == str(NOW + MINUTE)
    # and a deleted schedule cannot be advanced (its timer stays gone)
    store.delete_schedule("sched_a", require_type="")
    assert not store.advance_schedule(
        "sched_a",
        expected_ms=NOW + 3 * MINUTE,
        next_ms=NOW + 4 * MINUTE,
        due_ms=NOW + 4 * MINUTE,
        last_ms=None,
        now_ms=NOW,
    )
    assert store.timer_due(schedule_timer("sched_a")) is None


def test_put_re_arms_a_lost_timer_but_not_a_claimed_one(store: Store) -> None:
    """D-12: a schedule whose timer was lost (dropped by an old worker) is re-armed by the
    next sync; one whose timer is claimed (a fire in progress) is left to that fire."""
    # Given a schedule whose timer is currently claimed by a worker
    put(store)
    assert store.claim_timers(NOW + MINUTE + 5, 10, 30_000) == [schedule_timer("sched_a")]
    # When it is synced again unchanged
    _, record = put(store, next_run=NOW + 2 * MINUTE)
    # Then nothing moves
    assert record is not None and record["next_run"] == str(NOW + MINUTE)
    assert store.timer_due(schedule_timer("sched_a")) is None
    # Given the claim is then acknowledged without a new timer (the member is lost)
    store.ack_timers([schedule_timer("sched_a")])
    # When it is synced again
    _, record = put(store, next_run=NOW + 3 * MINUTE)
    # Then its next occurrence is re-armed from the sync's computation
    assert record is not None and record["next_run"] == str(NOW + 3 * MINUTE)
    assert store.timer_due(schedule_timer("sched_a")) == NOW + 3 * MINUTE + 5
