"""``celery -A proj trigger dev``: a development worker that restarts when the code changes.

The command runs ``celery -A proj worker`` as a child process in the DEVELOPMENT environment
(``TRIGGER_ENVIRONMENT=DEVELOPMENT``: no retries, free runs, the development TTL), with
defaults that suit a laptop (threads pool, concurrency 2, task events on for Flower), and
watches the project's Python files: every ``.py`` file under the packages of ``config.dirs``
and under the ``-A`` module (its package directory when it is a package). When one is
added, removed or saved, the worker is stopped and started again, so the next run uses the
new code.

Invariants:
- no new dependency: files are watched by polling their modification times
  (``--poll-interval``);
- the parent never imports task code (a syntax error cannot kill it): a worker that exits
  on its own is reported and started again on the next change;
- the worker runs in its own session, so Ctrl-C in the terminal reaches the parent only,
  which stops the worker once (warm shutdown, then a cold one after ``--shutdown-timeout``)
  and exits 0 on SIGINT or SIGTERM.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import FrameType

import click

from ._engine.engine import Engine, current_or_none

#: Seconds between two scans of the watched files.
DEFAULT_POLL_INTERVAL_S = 0.5
#: Seconds a stopping worker gets to finish its runs before a cold shutdown.
DEFAULT_SHUTDOWN_TIMEOUT_S = 10.0
#: Seconds a cold-stopped worker gets before it is killed.
KILL_AFTER_S = 5.0

Snapshot = dict[str, int]


def watch_roots(app_arg: str | None, dirs: Iterable[str]) -> list[Path]:
    """The directories and files to watch: each ``config.dirs`` package and the ``-A`` module."""
    roots: list[Path] = []
    names = list(dirs)
    if app_arg:
        module = _loaded_module_name(app_arg.split(":", 1)[0])
        if module is not None:
            names.append(module)
    for name in names:
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            continue  # the worker reports it when it starts
        if spec is None:
            continue
        if spec.submodule_search_locations:
            roots.extend(Path(p) for p in spec.submodule_search_locations)
        elif spec.origin and spec.origin.endswith(".py"):
            roots.append(Path(spec.origin))
    return roots


def _loaded_module_name(dotted: str) -> str | None:
    """The longest prefix of ``dotted`` that is an imported module (``-A proj.celery.app``)."""
    parts = dotted.split(".")
    while parts:
        name = ".".join(parts)
        if name in sys.modules:
            return name
        parts.pop()
    return None


def snapshot(roots: Sequence[Path]) -> Snapshot:
    """``{path: mtime_ns}`` of every ``.py`` file under ``roots``."""
    found: Snapshot = {}
    for root in roots:
        files = [root] if root.is_file() else root.rglob("*.py")
        for path in files:
            try:
                found[str(path)] = path.stat().st_mtime_ns
            except OSError:
                continue  # removed while scanning: the next scan sees it gone
    return found


def changed_files(before: Snapshot, after: Snapshot) -> list[str]:
    """Files added, removed or modified between two snapshots."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def _drop_bytecode(paths: Iterable[str]) -> None:
    # A save within the same second that keeps the size leaves a .pyc Python still trusts.
    for path in paths:
        try:
            Path(importlib.util.cache_from_source(path)).unlink(missing_ok=True)
        except (OSError, ValueError, NotImplementedError):
            continue


class DevWorker:
    """One worker child process at a time, started with ``argv``."""

    def __init__(self, argv: list[str], shutdown_timeout: float) -> None:
        self.argv = argv
        self.shutdown_timeout = shutdown_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.reported_exit = False

    def start(self) -> None:
        env = {**os.environ, "TRIGGER_ENVIRONMENT": "DEVELOPMENT"}
        self.proc = subprocess.Popen(self.argv, env=env, start_new_session=True)
        self.reported_exit = False
        click.echo(f"[trigger dev] worker started (pid {self.proc.pid})", err=True)

    def exited(self) -> int | None:
        """The worker's exit code once it has exited on its own (reported once)."""
        if self.proc is None or self.reported_exit:
            return None
        code = self.proc.poll()
        if code is not None:
            self.reported_exit = True
        return code

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        for sig, grace in (
            (signal.SIGTERM, self.shutdown_timeout),
            (signal.SIGQUIT, KILL_AFTER_S),
            (signal.SIGKILL, None),
        ):
            proc.send_signal(sig)
            try:
                proc.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                click.echo(f"[trigger dev] worker still running, sending {sig.name}", err=True)


def worker_argv(
    app_arg: str | None, pool: str, concurrency: int, loglevel: str, extra: Sequence[str]
) -> list[str]:
    """The ``celery worker`` command line of the development worker."""
    head = [sys.executable, "-m", "celery"] + (["-A", app_arg] if app_arg else [])
    return [
        *head,
        "worker",
        "-P",
        pool,
        "-c",
        str(concurrency),
        "-l",
        loglevel,
        "-E",
        "--without-mingle",
        "--without-gossip",
        *extra,
    ]


def _engine(ctx: click.Context) -> Engine:
    """The ``-A`` app's engine, its task packages not imported (the worker imports them)."""
    app = getattr(ctx.obj, "app", None)
    engine = current_or_none()
    if engine is None or (app is not None and engine.app is not app):
        raise click.UsageError("the app given with -A must call celery_trigger.setup(app)")
    pinned = engine.config.environment
    if pinned not in (None, "DEVELOPMENT"):
        click.echo(
            f"[trigger dev] warning: define_config(environment={pinned!r}) wins over DEVELOPMENT",
            err=True,
        )
    return engine


@click.command(context_settings={"ignore_unknown_options": True})
@click.option("--pool", "-P", default="threads", show_default=True, help="Worker pool.")
@click.option("--concurrency", "-c", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--loglevel", "-l", default="INFO", show_default=True)
@click.option(
    "--poll-interval",
    default=DEFAULT_POLL_INTERVAL_S,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="Seconds between scans of the files.",
)
@click.option(
    "--shutdown-timeout",
    default=DEFAULT_SHUTDOWN_TIMEOUT_S,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds a stopping worker gets.",
)
@click.argument("worker_args", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def dev(
    ctx: click.Context,
    pool: str,
    concurrency: int,
    loglevel: str,
    poll_interval: float,
    shutdown_timeout: float,
    worker_args: tuple[str, ...],
) -> None:
    """A development worker: DEVELOPMENT environment, restarted when a project file changes.

    Example: ``celery -A proj trigger dev`` (extra worker options after ``--``:
    ``celery -A proj trigger dev -- -Q default,emails``).
    """
    engine = _engine(ctx)
    app_arg = ctx.find_root().params.get("app")
    app_arg = app_arg if isinstance(app_arg, str) else None
    roots = watch_roots(app_arg, engine.config.dirs)
    worker = DevWorker(
        worker_argv(app_arg, pool, concurrency, loglevel, worker_args), shutdown_timeout
    )
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        watched = snapshot(roots)
        click.echo(
            f"[trigger dev] watching {len(watched)} file(s) under "
            f"{', '.join(map(str, roots)) or 'nothing'}",
            err=True,
        )
        worker.start()
        while not stop.wait(poll_interval):
            code = worker.exited()
            if code is not None:
                click.echo(f"[trigger dev] worker exited ({code}); waiting for a change", err=True)
            current = snapshot(roots)
            changed = changed_files(watched, current)
            if changed:
                watched = current
                _drop_bytecode(changed)
                click.echo(f"[trigger dev] {', '.join(changed)} changed: restarting", err=True)
                worker.stop()
                worker.start()
    finally:
        click.echo("[trigger dev] stopping", err=True)
        worker.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
