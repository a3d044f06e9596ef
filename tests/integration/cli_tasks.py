"""Tasks the CLI tests run: imported by the test process (its worker) and by
``cliapp.py`` (the ``celery -A`` app of the command under test). Ids start with ``cli-``."""

from __future__ import annotations

from typing import Any

import celery_trigger as ct


@ct.task(id="cli-echo")
def cli_echo(payload: dict) -> dict[str, Any]:
    ct.logger.info("echoing", {"name": payload["name"]})
    ct.metadata.set("step", "done")
    return {"hello": payload["name"]}


@ct.task(id="cli-approve")
def cli_approve(payload: dict) -> Any:
    ct.logger.info("waiting for approval")
    return ct.wait.for_token(payload["token"]).unwrap()


@ct.task(id="cli-fails", retry={"max_attempts": 1})
def cli_fails(payload: dict) -> None:
    raise ValueError("no such row")
