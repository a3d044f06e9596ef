"""What the ``celery ... trigger`` commands share: the engine of the ``-A`` app, tables and
JSON output."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from enum import Enum
from typing import Any

import click

from ._engine.engine import Engine, current_or_none


def engine_of(ctx: click.Context) -> Engine:
    """The engine of the ``-A`` app, its task packages imported."""
    app = getattr(ctx.obj, "app", None)
    engine = current_or_none()
    if engine is None or (app is not None and engine.app is not app):
        raise click.UsageError("the app given with -A must call celery_trigger.setup(app)")
    engine.discover()
    return engine


def table(rows: list[tuple[Any, ...]]) -> None:
    """Print ``rows`` (the first is the header) as aligned columns."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def jsonable(value: Any) -> Any:
    """``value`` (dataclasses, enums, datetimes, errors) as plain JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, BaseException):
        to_dict = getattr(value, "to_dict", None)
        return (
            to_dict()
            if callable(to_dict)
            else {"name": type(value).__name__, "message": str(value)}
        )
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def echo_json(value: Any) -> None:
    """Print ``value`` as indented JSON (the ``--json`` output of every command)."""
    click.echo(json.dumps(jsonable(value), indent=2, sort_keys=True))
