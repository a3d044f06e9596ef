"""``celery -A proj trigger ...``: the Celery CLI plugin (a click group).

Registered through the ``celery.commands`` entry point in ``pyproject.toml``, so every
``celery`` command line of an environment where celery-trigger is installed has it. The app
given with ``-A`` must call ``celery_trigger.setup(app)`` (as every project does); commands
import the packages of ``config.dirs`` first, like a worker start, so task definitions are
known.

Commands: ``schedules sync [--prune]``, ``schedules list [--page N --per-page N]``;
``runs list|show|logs|cancel|replay`` and ``tokens list|complete`` (``cli_runs.py``);
``dev``, a development worker that restarts on change (``cli_dev.py``).
Every command validates its arguments and calls the public API.
"""

from __future__ import annotations

from typing import Any

import click

from . import schedules as api
from ._cli import engine_of, table
from ._engine.schedules import sync_declarative
from .cli_dev import dev
from .cli_runs import runs, tokens


@click.group(name="trigger")
def trigger() -> None:
    """celery-trigger commands (runs, tokens, schedules, dev)."""


@trigger.group()
def schedules() -> None:
    """Scheduled tasks: sync declarative schedules, list schedules."""


@schedules.command("sync")
@click.option(
    "--prune",
    is_flag=True,
    help="Also delete declarative schedules of tasks this app does not define.",
)
@click.pass_context
def sync(ctx: click.Context, prune: bool) -> None:
    """Write the app's declarative schedules for trigger_environment (as a worker start does).

    Example: ``celery -A proj trigger schedules sync``.
    """
    report = sync_declarative(engine_of(ctx), prune=prune)
    for outcome in ("created", "updated", "deleted"):
        for schedule_id in report.get(outcome, []):
            click.echo(f"{outcome} {schedule_id}")
    click.echo(f"{sum(len(v) for v in report.values())} declarative schedule(s) synced")


@schedules.command("list")
@click.option("--page", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--per-page", default=20, show_default=True, type=click.IntRange(1, 100))
@click.pass_context
def list_(ctx: click.Context, page: int, per_page: int) -> None:
    """List schedules: id, type, task, cron, timezone, active, next run.

    Example: ``celery -A proj trigger schedules list --per-page 50``.
    """
    engine_of(ctx)
    result = api.list(page=page, per_page=per_page)
    rows: list[tuple[Any, ...]] = [("ID", "TYPE", "TASK", "CRON", "TIMEZONE", "ACTIVE", "NEXT RUN")]
    for s in result:
        rows.append(
            (
                s.id,
                s.type,
                s.task,
                s.cron,
                s.timezone,
                "yes" if s.active else "no",
                s.next_run.isoformat() if s.next_run else "-",
            )
        )
    table(rows)
    p = result.pagination
    click.echo(f"page {p.current_page} of {max(p.total_pages, 1)} ({p.count} schedules)")


trigger.add_command(runs)
trigger.add_command(tokens)
trigger.add_command(dev)
