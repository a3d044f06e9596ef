"""Progress reporting with run metadata: children update their parent's document.

A parent run ("publish an album") sets ``total`` in its metadata and fans out one child run
per photo with ``batch_trigger_and_wait``. Each child reports to its parent with
``ct.metadata.parent``: it increments ``done`` and appends the photo's name. Meanwhile this
script, like a web page polling an API, reads the parent's metadata with
``ct.runs.retrieve`` and prints the progress until the parent completes.

Run it with no services (embedded) or against Redis::

    python examples/metadata/app.py
    python examples/metadata/app.py --redis redis://localhost:6379/0
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from celery import Celery

import celery_trigger as ct
from celery_trigger.testing import run_worker, wait_for_run

PHOTOS = ["beach.jpg", "forest.jpg", "harbour.jpg", "market.jpg", "summit.jpg"]


@ct.task(id="metadata-resize-photo")
def resize_photo(payload: dict[str, Any]) -> str:
    """Resize one photo, then tell the parent run about it."""
    time.sleep(0.2)  # the resizing work
    resized = payload["name"].replace(".jpg", "-800w.jpg")
    ct.metadata.set("status", "resized")  # this run's own document
    ct.metadata.parent.increment("done").append("resized", resized)
    return resized


@ct.task(id="metadata-publish-album")
def publish_album(payload: dict[str, Any]) -> dict[str, Any]:
    """Resize every photo in parallel child runs, then publish."""
    ct.metadata.set("status", "resizing").set("total", len(payload["photos"]))
    results = resize_photo.batch_trigger_and_wait(
        [{"payload": {"name": name}} for name in payload["photos"]]
    )
    ct.metadata.refresh()  # read what the children wrote
    ct.metadata.set("status", "published")
    return {
        "published": [r.output for r in results if r.ok],
        "done_seen_by_parent": ct.metadata.get("done"),
    }


def make_app(redis_url: str | None) -> Celery:
    """A Celery app with celery-trigger installed: embedded without a URL, else on Redis."""
    if redis_url is None:
        app = Celery("metadata", broker="memory://localhost/", backend="cache+memory://")
        app.conf.trigger_store = "memory"
    else:
        app = Celery("metadata", broker=redis_url, backend=redis_url)
    ct.setup(app, metadata_flush_interval=0.2)
    return app


def watch(run_id: str, timeout: float = 30.0) -> ct.Run:
    """Print the parent's progress each time it changes, until the run is final."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        run = ct.runs.retrieve(run_id)
        meta = run.metadata or {}
        line = f"  {meta.get('status', 'queued')}: {meta.get('done', 0)}/{meta.get('total', '?')}"
        if line != last:
            print(line, flush=True)
            last = line
        if run.is_completed:
            return run
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} did not finish in {timeout} s")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="celery-trigger run metadata example")
    parser.add_argument("--redis", metavar="URL", help="use Redis at URL (default: embedded)")
    args = parser.parse_args(argv)
    app = make_app(args.redis)
    with run_worker(app, concurrency=3):
        handle = publish_album.trigger({"photos": PHOTOS}, metadata={"album": "summer"})
        watch(handle.id)
        run = wait_for_run(handle, timeout=30)
    meta = run.metadata or {}
    print(f"run {run.id}: {run.status}")
    print(f"progress: {meta['done']}/{meta['total']} {meta['status']}")
    print(f"resized: {', '.join(sorted(meta['resized']))}")
    print(f"album: {meta['album']}; parent saw done={run.output['done_seen_by_parent']}")


if __name__ == "__main__":
    main()
