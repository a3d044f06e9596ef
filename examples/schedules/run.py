"""Demo of per-user reminders: schedule two users from application code, watch them fire.

    python examples/schedules/run.py                  # embedded: no services needed
    python examples/schedules/run.py --redis redis://localhost:6379/0

Reminders fire at a time of day, so the demo simulates time: once its worker is up, the
schedule clock starts on Monday 2030-01-07 07:00 UTC and runs an hour per second (a test
hook of celery-trigger; real projects never touch it). ``--real-time`` skips the simulation:
it creates the schedules, prints them and exits, as a web request would.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone

from app import make_app, pause_reminders, send_reminder, set_reminder, stop_reminders

import celery_trigger as ct
from celery_trigger._engine import schedules as clock_hook  # the demo's simulated time only
from celery_trigger.testing import run_worker

START = datetime(2030, 1, 7, 7, 0, tzinfo=timezone.utc)
SPEED = 3600  # one simulated hour per real second


def show(user: str, schedule: ct.schedules.Schedule) -> None:
    next_run = schedule.next_run.strftime("%Y-%m-%d %H:%M UTC") if schedule.next_run else "-"
    print(f"{user}: {schedule.description} in {schedule.timezone}, next {next_run}")


def simulate_time() -> None:
    wall = int(time.time() * 1000)
    offset = clock_hook.to_ms(START) - wall
    clock_hook.set_clock(clock_hook.Clock(origin_ms=wall, offset_ms=offset, speed=SPEED))


def first_reminders(count: int) -> list[ct.Run]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = [r for r in ct.runs.list(task_identifier=send_reminder.id) if r.is_completed]
        if len(done) >= count:
            return sorted(done, key=lambda r: r.output["scheduled_for"])[:count]
        time.sleep(0.05)
    raise TimeoutError("the reminders did not fire; is the timer service running?")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="celery-trigger per-user reminders")
    parser.add_argument("--redis", metavar="URL", help="use Redis at URL (default: embedded)")
    parser.add_argument("--real-time", action="store_true", help="create, print and exit")
    args = parser.parse_args(argv)
    app = make_app(args.redis)
    print(f"mode: {'redis' if args.redis else 'embedded'}")
    with run_worker(app):
        if not args.real_time:
            simulate_time()
        # Application code: users save their reminder settings.
        ada = set_reminder("ada", hour=8, minute=30, timezone="Europe/London")
        grace = set_reminder("grace", hour=9, timezone="Europe/Paris")
        show("ada", ada)
        show("grace", grace)
        moved = set_reminder("ada", hour=8, minute=15, timezone="Europe/London")
        print(f"ada moved her reminder: same schedule {moved.id == ada.id}, {moved.description}")
        if args.real_time:
            return
        for run in first_reminders(2):
            out = run.output
            print(f"reminder for {out['user']} at {out['local_time']}: {out['message']}")
        pause_reminders(grace.id)
        stop_reminders(moved.id)
        left = ct.schedules.list()
        print(f"schedules left: {left.pagination.count} (grace's active: {left.data[0].active})")


if __name__ == "__main__":
    main()
