"""Human approval: a run parks on a waitpoint token until a reviewer answers over HTTP.

The task creates a token, sends its callback URL to a reviewer (here: logs it) and waits. While
it waits the run is ``WAITING`` and holds no worker slot; a POST of
``{"approved": true, "reviewer": "ada"}`` to the URL resumes it with that body as the output
of ``wait.for_token``. Anything that can send an HTTP POST can answer: an email link handler,
a Slack action, another service.

The HTTP side is ``server.py``; ``run.py`` runs the whole demo in one process.
"""

from __future__ import annotations

import logging
import os
import secrets
from typing import Any

from celery import Celery

import celery_trigger as ct

logger = logging.getLogger("approval")
QUEUE = "approval"


def notify_reviewer(post_id: str, url: str) -> str:
    """Stand-in for an email or chat message carrying the approval link."""
    logger.info("post %s needs a review: POST your decision to %s", post_id, url)
    return url


@ct.task(id="approval-publish-post")
def publish_post(payload: dict[str, Any], ctx: ct.Context) -> dict[str, Any]:
    """Publish a post once a reviewer approves it; give up after a day without an answer."""
    post_id = payload["post_id"]
    token = ct.wait.create_token(timeout="1d", tags=[f"post:{post_id}"])
    # Code before a wait re-executes when the run resumes; steps.run makes the message go once.
    ct.steps.run("notify-reviewer", notify_reviewer, post_id, token.url)
    decision = ct.wait.for_token(token)
    if not decision.ok:
        return {"post_id": post_id, "status": "expired"}
    answer = decision.output
    approved = isinstance(answer, dict) and answer.get("approved") is True
    return {
        "post_id": post_id,
        "status": "published" if approved else "rejected",
        "reviewer": answer.get("reviewer") if isinstance(answer, dict) else None,
        "attempt": ctx.attempt.number,
    }


def make_app(redis_url: str | None, *, base_url: str) -> Celery:
    """The Celery app with celery-trigger installed; token URLs start with ``base_url``.

    Worker, web server and this demo must share ``TRIGGER_SECRET_KEY`` (it signs the URLs);
    without it a random key is made, which is only right when everything runs in one process.
    """
    if redis_url is None:
        app = Celery("approval", broker="memory://localhost/", backend="cache+memory://")
        app.conf.trigger_store = "memory"
    else:
        app = Celery("approval", broker=redis_url, backend=redis_url)
        app.conf.trigger_key_prefix = "approval"
    app.conf.task_default_queue = QUEUE
    app.conf.trigger_base_url = base_url
    app.conf.trigger_secret_key = os.environ.get("TRIGGER_SECRET_KEY") or secrets.token_hex(32)
    ct.setup(app)
    return app
