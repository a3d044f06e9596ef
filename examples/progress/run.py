"""Trigger the export and draw a live progress bar from a realtime subscription.

    python examples/progress/run.py --redis redis://localhost:6379/0
    python examples/progress/run.py                  # embedded: no Redis at all
    python examples/progress/run.py --redis URL --no-worker   # a worker runs elsewhere

1. start an in-process Celery worker (unless ``--no-worker``) and trigger ``progress-export``;
2. subscribe to the run with ``ct.runs.subscribe_to_run(handle.id).with_streams()``: the
   first item is the run's current state, then one item per change (status, metadata) and
   one per chunk of its ``log`` stream; the subscription ends after the run's final state;
3. draw the run's ``progress`` metadata as a ``tqdm`` bar and print each log line above it.

Nothing polls: the subscription sleeps until the run changes (see docs/realtime.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator

from app import QUEUE, export, make_app
from tqdm import tqdm

import celery_trigger as ct
from celery_trigger.testing import run_worker

BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar:30}|"


def follow(run_id: str) -> ct.Run:
    """Render the run live until it is final; return its last state."""
    run: ct.Run | None = None
    seen: list[float] = []
    bar = tqdm(total=100, bar_format=BAR_FORMAT, file=sys.stdout, desc="?")
    with bar, ct.runs.subscribe_to_run(run_id).with_streams() as subscription:
        for part in subscription:
            run = part.run
            if part.type == "log":
                bar.write(f"  log: {part.chunk}", file=sys.stdout)
                continue
            progress = float((run.metadata or {}).get("progress", 0.0))
            if not seen or progress != seen[-1]:
                seen.append(progress)
            rows = (run.metadata or {}).get("rows_done", 0)
            bar.set_description_str(f"{run.status.value:<10} {rows:>6} rows", refresh=False)
            bar.n = round(progress * 100)
            bar.refresh()
    assert run is not None  # the first item is always the current state
    print(f"progress values seen: {', '.join(f'{p:.0%}' for p in seen)}")
    return run


@contextlib.contextmanager
def maybe_worker(app: object, start: bool) -> Iterator[None]:
    if not start:
        yield
        return
    with run_worker(app, queues=[QUEUE]):  # type: ignore[arg-type]
        yield


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="celery-trigger realtime progress bar")
    parser.add_argument("--redis", metavar="URL", help="use Redis at URL (default: embedded)")
    parser.add_argument("--rows", type=int, default=5000, help="rows to export")
    parser.add_argument("--steps", type=int, default=20, help="progress updates")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds per step")
    parser.add_argument("--no-worker", action="store_true", help="a worker runs elsewhere")
    args = parser.parse_args(argv)
    app = make_app(args.redis)
    with maybe_worker(app, not args.no_worker):
        handle = export.trigger({"rows": args.rows, "steps": args.steps, "pause": args.pause})
        print(f"run {handle.id}: triggered")
        run = follow(handle.id)
    print(f"run {run.id}: {run.status.value}")
    print(f"output: {json.dumps(run.output, sort_keys=True)}")


if __name__ == "__main__":
    main()
