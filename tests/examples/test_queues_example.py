"""The queues example runs as a subprocess, embedded and on Redis (SEMANTICS §6)."""

from __future__ import annotations

from .conftest import ROOT, run_python

APP = str(ROOT / "examples" / "queues" / "app.py")
DB_QUEUES = 55  # a database of the private server no other test uses
EXPECTED = [
    "emails: 6 sent, at most 2 at a time (limit 2)",
    "reports: at most 1 at a time for ada, 1 for bob (limit 1 per user)",
    "queue emails: limit 2, 2 running, 2 queued",
    "priority: started late then early",
]


def test_queues_example_keeps_its_limits_without_redis() -> None:
    """QUEUE-1, QUEUE-2, TRIG-13: the embedded example prints its limits and the priority
    order."""
    # When the example runs in embedded mode
    out = run_python(APP)
    # Then every limit held and the later, higher-priority run started first
    assert out.splitlines() == EXPECTED, out


def test_queues_example_keeps_its_limits_on_redis(redis_server: str) -> None:
    """QUEUE-1, QUEUE-2, TRIG-13: the same against Redis."""
    out = run_python(APP, "--redis", f"{redis_server}/{DB_QUEUES}")
    assert out.splitlines() == EXPECTED, out
