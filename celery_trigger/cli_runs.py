"""``celery -A proj trigger runs ...`` and ``... tokens ...``: runs and waitpoint tokens from
the command line, as readable tables or ``--json`` for scripts.

- ``runs list [--status S]... [--task T] [--tag T] [--limit N]``;
- ``runs show ID``: the record, its attempts, children, metadata and last log entries;
- ``runs logs ID [--limit N] [--follow]``: the run's own log; ``--follow`` prints new
  entries until the run is final;
- ``runs cancel ID``, ``runs replay ID``;
- ``tokens list [--status S] [--limit N]``, ``tokens complete ID JSON``.

Each command validates its arguments and calls the public API (``ct.runs``, ``ct.wait``);
errors it raises (an unknown run, bad JSON) end the command with a one-line message.
"""

from __future__ import annotations

import json
import time
from typing import Any

import click

from . import runs as runs_api
from . import wait as wait_api
from ._cli import echo_json, engine_of, jsonable, table
from .errors import TriggerError
from .logger import LogEntry
from .status import RunStatus

#: How often ``runs logs --follow`` reads the run's log again (seconds).
FOLLOW_POLL_S = 0.5
#: Log entries ``runs show`` prints.
SHOW_LOGS = 10

_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(f"{type(exc).__name__}: {exc}")


@click.group()
def runs() -> None:
    """Runs: list, show, logs, cancel, replay."""


@runs.command("list")
@click.option("--status", multiple=True, type=click.Choice([s.value for s in RunStatus]))
@click.option("--task", default=None, help="Only runs of this task id.")
@click.option("--tag", default=None, help="Only runs with this tag.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100))
@_json_option
@click.pass_context
def list_runs(
    ctx: click.Context,
    status: tuple[str, ...],
    task: str | None,
    tag: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Runs newest first. Example: ``celery -A proj trigger runs list --status FAILED``."""
    engine_of(ctx)
    page = runs_api.list(status=list(status) or None, task_identifier=task, tag=tag, limit=limit)
    found = list(page.data)
    if as_json:
        echo_json(found)
        return
    rows: list[tuple[Any, ...]] = [("ID", "TASK", "STATUS", "ATTEMPTS", "CREATED", "TAGS")]
    for run in found:
        rows.append(
            (run.id, run.task_identifier, run.status.value, run.attempt_count,
             _when(run.created_at), ",".join(run.tags) or "-")
        )  # fmt: skip
    table(rows)
    click.echo(f"{len(found)} run(s)")


@runs.command("show")
@click.argument("run_id")
@_json_option
@click.pass_context
def show(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """A run: record, attempts, children, metadata, last logs.

    Example: ``celery -A proj trigger runs show run_abc``."""
    engine_of(ctx)
    try:
        run = runs_api.retrieve(run_id)
        entries = runs_api.logs(run_id, limit=1000)[-SHOW_LOGS:]
    except (TriggerError, ValueError) as exc:
        raise _fail(exc) from None
    if as_json:
        echo_json({"run": run, "logs": [e.to_json() for e in entries]})
        return
    fields = [
        ("id", run.id), ("task", run.task_identifier), ("status", run.status.value),
        ("created", _when(run.created_at)), ("started", _when(run.started_at)),
        ("finished", _when(run.finished_at)), ("tags", ",".join(run.tags) or "-"),
        ("idempotency key", run.idempotency_key or "-"), ("parent", run.parent_id or "-"),
        ("duration ms", run.duration_ms), ("cost cents", run.cost_in_cents),
        ("payload", json.dumps(jsonable(run.payload))),
        ("output", json.dumps(jsonable(run.output))),
        ("error", f"{run.error.name}: {run.error.message}" if run.error else "-"),
    ]  # fmt: skip
    for name, value in fields:
        click.echo(f"{name + ':':<17}{value}")
    click.echo("attempts:")
    for attempt in run.attempts:
        error = f"{attempt.error.name}: {attempt.error.message}" if attempt.error else "ok"
        click.echo(f"  {attempt.number}  {error}")
    click.echo(f"children:        {', '.join(run.children) or '-'}")
    click.echo(f"metadata:        {json.dumps(jsonable(run.metadata or {}), sort_keys=True)}")
    click.echo("logs:")
    for entry in entries:
        click.echo("  " + _log_line(entry))


def _log_line(entry: LogEntry) -> str:
    attrs = " ".join(f"{k}={v}" for k, v in sorted(entry.attributes.items()))
    return f"{_when(entry.timestamp)} {entry.level.upper():<5} {entry.message} {attrs}".rstrip()


@runs.command("logs")
@click.argument("run_id")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 5000))
@click.option("--follow", is_flag=True, help="Print new entries until the run is final.")
@_json_option
@click.pass_context
def logs(ctx: click.Context, run_id: str, limit: int, follow: bool, as_json: bool) -> None:
    """The run's own log (``ct.logger``), oldest first.

    Example: ``celery -A proj trigger runs logs run_abc --follow``."""
    engine_of(ctx)
    printed = 0
    while True:
        try:
            entries = runs_api.logs(run_id, limit=limit)
            final = runs_api.retrieve(run_id).is_completed if follow else True
        except (TriggerError, ValueError) as exc:
            raise _fail(exc) from None
        for entry in entries[printed:]:
            click.echo(json.dumps(entry.to_json()) if as_json else _log_line(entry))
        printed = len(entries)
        if final:
            if follow:  # entries written just before the final status
                for entry in runs_api.logs(run_id, limit=limit)[printed:]:
                    click.echo(json.dumps(entry.to_json()) if as_json else _log_line(entry))
            return
        time.sleep(FOLLOW_POLL_S)


@runs.command("cancel")
@click.argument("run_id")
@click.pass_context
def cancel(ctx: click.Context, run_id: str) -> None:
    """Cancel a run (and its children). Example: ``... trigger runs cancel run_abc``."""
    engine_of(ctx)
    try:
        runs_api.cancel(run_id)
    except (TriggerError, ValueError) as exc:
        raise _fail(exc) from None
    click.echo(f"cancelled {run_id}")


@runs.command("replay")
@click.argument("run_id")
@_json_option
@click.pass_context
def replay(ctx: click.Context, run_id: str, as_json: bool) -> None:
    """Trigger a new run with the same task and payload; prints its id.

    Example: ``celery -A proj trigger runs replay run_abc``."""
    engine_of(ctx)
    try:
        handle = runs_api.replay(run_id)
    except (TriggerError, ValueError) as exc:
        raise _fail(exc) from None
    if as_json:
        echo_json({"id": handle.id, "replay_of": run_id})
    else:
        click.echo(handle.id)


@click.group()
def tokens() -> None:
    """Waitpoint tokens: list, complete."""


@tokens.command("list")
@click.option("--status", multiple=True, help="WAITING, COMPLETED or TIMED_OUT.")
@click.option("--limit", default=25, show_default=True, type=click.IntRange(1, 100))
@_json_option
@click.pass_context
def list_tokens(ctx: click.Context, status: tuple[str, ...], limit: int, as_json: bool) -> None:
    """Tokens newest first. Example: ``celery -A proj trigger tokens list --status WAITING``."""
    engine_of(ctx)
    try:
        found = wait_api.list_tokens(status=list(status) or None, limit=limit)
    except ValueError as exc:
        raise _fail(exc) from None
    if as_json:
        echo_json(found)
        return
    rows: list[tuple[Any, ...]] = [("ID", "STATUS", "CREATED", "TIMEOUT", "TAGS")]
    for token in found:
        rows.append(
            (token.id, token.status, _when(token.created_at), _when(token.timeout_at),
             ",".join(token.tags) or "-")
        )  # fmt: skip
    table(rows)
    click.echo(f"{len(found)} token(s)")


@tokens.command("complete")
@click.argument("token_id")
@click.argument("data", default="null")
@click.pass_context
def complete(ctx: click.Context, token_id: str, data: str) -> None:
    """Complete a token with JSON ``data``; the runs waiting for it resume.

    Example: ``celery -A proj trigger tokens complete waitpoint_abc '{"approved": true}'``."""
    engine_of(ctx)
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="DATA") from None
    try:
        wait_api.complete_token(token_id, value)
    except (TriggerError, ValueError) as exc:
        raise _fail(exc) from None
    click.echo(f"completed {token_id}")
