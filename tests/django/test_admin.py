"""Admin pages for runs, waitpoint tokens and queues: rendered for a logged-in staff user
(Django's test client), actions working, permissions respected."""

from __future__ import annotations

import json
import uuid
from typing import Any

import celery_trigger as ct
from tests.django.conftest import CtApp, wait_for_final
from tests.helpers import wait_for

RUNS = "/admin/celery_trigger_django/run/"
TOKENS = "/admin/celery_trigger_django/waitpointtoken/"
QUEUES = "/admin/celery_trigger_django/queue/"


def test_run_list_filters_and_search(ctapp: CtApp, staff_client: Any) -> None:
    """DJ-5: list with status, task, tag and date filters; search by id, tag, idempotency key."""
    client = staff_client(superuser=True)
    tag = f"t{uuid.uuid4().hex[:6]}"
    # Given a few runs (none executes: no worker)
    tagged = ct.tasks.trigger("dj-echo", 1, tags=[tag])
    keyed = ct.tasks.trigger("dj-echo", 2, idempotency_key="order-77")
    other = ct.tasks.trigger("dj-record-order", {"order_id": 0})
    # When the list is opened, Then every run shows
    page = client.get(RUNS).content.decode()
    assert all(h.id in page for h in (tagged, keyed, other))
    # and the filters narrow it
    by_task = client.get(RUNS, {"task": "dj-record-order"}).content.decode()
    assert other.id in by_task and tagged.id not in by_task
    by_tag = client.get(RUNS, {"tag": tag}).content.decode()
    assert tagged.id in by_tag and keyed.id not in by_tag
    assert tagged.id not in client.get(RUNS, {"status": "COMPLETED"}).content.decode()
    assert (
        tagged.id in client.get(RUNS, {"status": "QUEUED", "from": "2000-01-01"}).content.decode()
    )
    assert tagged.id not in client.get(RUNS, {"to": "2000-01-01"}).content.decode()
    # and search finds by id, tag and idempotency key
    assert other.id in client.get(RUNS, {"q": other.id}).content.decode()
    found = client.get(RUNS, {"q": tag}).content.decode()
    assert tagged.id in found and other.id not in found
    run = ct.runs.retrieve(keyed.id)
    found = client.get(RUNS, {"q": run.idempotency_key}).content.decode()
    assert keyed.id in found and tagged.id not in found


def test_run_detail_shows_the_run_and_links_parent_and_children(
    ctapp: CtApp, staff_client: Any
) -> None:
    """DJ-5: payload, output, error, metadata, tags, attempts, parent/children links."""
    client = staff_client(superuser=True)
    with ctapp.worker():
        handle = ct.tasks.trigger("dj-echo", {"x": 1}, tags=["shown"], metadata={"m": 5})
        wait_for_final(handle.id)
    response = client.get(f"{RUNS}{handle.id}/")
    assert response.status_code == 200
    page = response.content.decode()
    for fragment in ("COMPLETED", "&quot;x&quot;: 1", "&quot;m&quot;: 5", "shown", "dj-echo"):
        assert fragment in page
    assert client.get(f"{RUNS}run_missing/").status_code == 404


def test_run_actions_cancel_and_replay(ctapp: CtApp, staff_client: Any) -> None:
    """DJ-5: cancel a delayed run; replay it as a new run and land on its page."""
    client = staff_client(superuser=True)
    handle = ct.tasks.trigger("dj-echo", {"again": True}, delay="1h")
    response = client.post(f"{RUNS}{handle.id}/do/cancel/")
    assert response.status_code == 302
    assert ct.runs.retrieve(handle.id).status == ct.RunStatus.CANCELED
    response = client.post(f"{RUNS}{handle.id}/do/replay/")
    assert response.status_code == 302
    new_id = response["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert new_id != handle.id
    replayed = ct.runs.retrieve(new_id)
    assert replayed.payload == {"again": True} and replayed.is_replay
    assert client.get(f"{RUNS}{handle.id}/do/cancel/").status_code == 405


def test_permissions_staff_only_view_and_change(ctapp: CtApp, staff_client: Any) -> None:
    """DJ-5: anonymous users go to the login page, staff need view_* to see, change_* to act."""
    from django.test import Client

    handle = ct.tasks.trigger("dj-echo", 1, delay="1h")
    assert Client().get(RUNS).status_code == 302  # to the admin login
    no_perm = staff_client()
    assert no_perm.get(RUNS).status_code == 403
    viewer = staff_client("celery_trigger_django.view_run")
    assert viewer.get(RUNS).status_code == 200
    assert viewer.get(f"{RUNS}{handle.id}/").status_code == 200
    assert b"Cancel run" not in viewer.get(f"{RUNS}{handle.id}/").content
    assert viewer.post(f"{RUNS}{handle.id}/do/cancel/").status_code == 403
    assert ct.runs.retrieve(handle.id).status == ct.RunStatus.DELAYED
    changer = staff_client("celery_trigger_django.view_run", "celery_trigger_django.change_run")
    assert b"Cancel run" in changer.get(f"{RUNS}{handle.id}/").content
    assert changer.post(f"{RUNS}{handle.id}/do/cancel/").status_code == 302
    assert ct.runs.retrieve(handle.id).status == ct.RunStatus.CANCELED
    index = viewer.get("/admin/").content.decode()
    assert "Runs" in index and "Queues" not in index


def test_tokens_list_and_complete_with_json(ctapp: CtApp, staff_client: Any) -> None:
    """DJ-5: the waiting token is listed; completing it with JSON resumes its run."""
    client = staff_client(superuser=True)
    order = uuid.uuid4().hex[:8]
    with ctapp.worker():
        handle = ct.tasks.trigger("dj-wait-approval", {"order": order})
        token = wait_for(lambda: (ct.wait.list_tokens(tags=f"order:{order}") or [None])[0])
        assert token.id in client.get(TOKENS).content.decode()
        assert token.id in client.get(TOKENS, {"status": "WAITING"}).content.decode()
        detail = client.get(f"{TOKENS}{token.id}/").content.decode()
        assert "Complete token" in detail
        bad = client.post(f"{TOKENS}{token.id}/do/complete/", {"data": "{not json"}, follow=True)
        assert "not JSON" in bad.content.decode()
        done = client.post(
            f"{TOKENS}{token.id}/do/complete/", {"data": json.dumps({"approved": True})}
        )
        assert done.status_code == 302
        run = wait_for_final(handle.id)
    assert run.output == {"approved": True}
    assert ct.wait.retrieve_token(token.id).status == "COMPLETED"


def test_queues_show_limits_and_pause_resume(ctapp: CtApp, staff_client: Any) -> None:
    """DJ-5: limit, running, queued; pause and resume."""
    client = staff_client(superuser=True)
    ct.tasks.trigger("dj-echo", 1, queue={"name": "dj-emails", "concurrency_limit": 3})
    page = client.get(QUEUES).content.decode()
    assert "dj-emails" in page and ">3<" in page
    assert client.post(f"{QUEUES}dj-emails/do/pause/").status_code == 302
    assert ct.queues.retrieve("dj-emails").paused
    assert client.post(f"{QUEUES}dj-emails/do/resume/").status_code == 302
    assert not ct.queues.retrieve("dj-emails").paused
    assert client.post(f"{QUEUES}task/dj-echo/do/pause/").status_code == 302
    assert ct.queues.retrieve("task/dj-echo").paused
