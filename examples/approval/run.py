"""Run the approval demo in one process: worker, HTTP endpoint, run and reviewer.

    python examples/approval/run.py --redis redis://localhost:6379/0
    python examples/approval/run.py                 # embedded: no Redis at all

1. serve the token endpoint (``server.py``) on a free local port;
2. start an in-process Celery worker and trigger ``publish_post``;
3. wait until the run has parked on its token (status ``WAITING``);
4. act as the reviewer: find the pending token by its tag and POST the decision to its URL;
5. print the run's final output.
"""

from __future__ import annotations

import argparse
import json
import time
import urllib.request
import uuid
from collections.abc import Callable
from typing import TypeVar

from app import make_app, publish_post
from server import serving

import celery_trigger as ct
from celery_trigger.testing import run_worker, wait_for_run

TIMEOUT_S = 30.0
T = TypeVar("T")


def poll(what: str, fn: Callable[[], T], timeout: float = TIMEOUT_S) -> T:
    """Call ``fn`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := fn()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


def approve(url: str, decision: dict[str, object]) -> tuple[int, str]:
    """POST the decision as JSON to the token's callback URL; no auth header is needed."""
    body = json.dumps(decision).encode()
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read().decode()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="celery-trigger human approval demo")
    parser.add_argument("--redis", metavar="URL", help="use Redis at URL (default: embedded)")
    args = parser.parse_args(argv)
    with serving() as server:
        base_url = f"http://127.0.0.1:{server.server_port}"
        app = make_app(args.redis, base_url=base_url)
        print(f"token endpoint: {base_url}")
        with run_worker(app):
            post_id = f"post-{uuid.uuid4().hex[:8]}"
            handle = publish_post.trigger({"post_id": post_id})
            poll(
                "the run to park",
                lambda: ct.runs.retrieve(handle.id).status is ct.RunStatus.WAITING,
            )
            token = poll(
                "the review token",
                lambda: ct.wait.list_tokens(tags=[f"post:{post_id}"], status="WAITING"),
            )[0]
            print(f"run {handle.id}: WAITING on token {token.id}")
            status, reply = approve(token.url, {"approved": True, "reviewer": "ada"})
            print(f"POST {token.url.removeprefix(base_url)} -> {status} {reply}")
            run = wait_for_run(handle, timeout=TIMEOUT_S)
    print(f"run {run.id}: {run.status.value}")
    print(f"output: {json.dumps(run.output, sort_keys=True)}")


if __name__ == "__main__":
    main()
