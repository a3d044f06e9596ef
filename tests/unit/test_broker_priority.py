"""D-20: the mapping of a run's priority to broker message priority."""

from __future__ import annotations

from celery import Celery

from celery_trigger._celery.priority import broker_priority, level, redis_sublist


def test_levels_keep_the_order_of_priorities_on_a_log_scale() -> None:
    values = [level(ms) for ms in (0, -5, 500, 1000, 2000, 4000, 60_000, 3_600_000)]
    assert values == [0, 0, 1, 1, 2, 3, 6, 9]


def test_broker_priority_follows_each_brokers_direction() -> None:
    app = Celery("p", set_as_current=False)
    assert broker_priority(app, 0, redis=False) is None
    assert broker_priority(app, 3_600_000, redis=False) == 9
    app.conf.task_default_priority = 9
    assert broker_priority(app, 3_600_000, redis=True) == 0
    assert broker_priority(app, 1000, redis=True) == 8


def test_redis_sublists_are_the_ones_kombu_reads() -> None:
    app = Celery("p", set_as_current=False)
    assert redis_sublist(app, "q", 0) == "q"
    assert redis_sublist(app, "q", 8) == "q\x06\x166"
    app.conf.broker_transport_options = {"priority_steps": list(range(10)), "sep": ":"}
    assert redis_sublist(app, "q", 8) == "q:8"
