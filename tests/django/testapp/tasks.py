"""Tasks of the test app, discovered by Celery's autodiscovery and by the Django app."""

from __future__ import annotations

from typing import Any

from celery import shared_task

import celery_trigger as ct


@ct.task(id="dj-record-order")
def record_order(payload: dict[str, Any]) -> dict[str, Any]:
    """Reads the order the trigger was deferred for: it exists once the transaction committed."""
    from .models import Order

    order = Order.objects.get(pk=payload["order_id"])
    return {"item": order.item}


@ct.task(id="dj-echo")
def echo(payload: Any) -> Any:
    return payload


@ct.task(id="dj-wait-approval")
def wait_approval(payload: dict[str, Any]) -> dict[str, Any]:
    token = ct.wait.create_token(tags=[f"order:{payload['order']}"], timeout="1h")
    result = ct.wait.for_token(token)
    return {"approved": bool(result.output and result.output.get("approved"))}


@ct.schedules.task(id="dj-nightly")
def nightly(payload: ct.schedules.ScheduledPayload) -> str:
    return payload.timestamp.isoformat()


@ct.schedules.task(id="dj-declared", cron={"pattern": "30 4 * * *", "timezone": "Europe/Paris"})
def declared(payload: ct.schedules.ScheduledPayload) -> str:
    return payload.timestamp.isoformat()


PLAIN_TICKS: list[str] = []


@shared_task(name="dj-plain-tick")
def plain_tick(label: str) -> None:
    """A plain Celery task (not celery-trigger) that celery beat sends."""
    PLAIN_TICKS.append(label)
