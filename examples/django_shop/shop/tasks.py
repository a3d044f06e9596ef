"""The shop's tasks: an order waits for a manager's approval; a nightly stock report."""

from __future__ import annotations

import logging
from typing import Any

import celery_trigger as ct

logger = logging.getLogger(__name__)


@ct.task(id="shop-approve-order")
def approve_order(payload: dict[str, Any]) -> dict[str, Any]:
    """Park until a manager completes the approval token (a link, or the admin's form)."""
    from .models import Order

    token = ct.wait.create_token(timeout="2d", tags=[f"order:{payload['order_id']}"])
    ct.steps.run(
        "notify",
        logger.warning,
        "order %s needs approval: POST to %s",
        payload["order_id"],
        token.url,
    )
    decision = ct.wait.for_token(token)
    approved = bool(decision.ok and (decision.output or {}).get("approved"))
    Order.objects.filter(pk=payload["order_id"]).update(
        status="approved" if approved else "rejected"
    )
    return {"order_id": payload["order_id"], "approved": approved}


@ct.schedules.task(id="shop-stock-report")
def stock_report(payload: ct.schedules.ScheduledPayload) -> dict[str, Any]:
    from .models import Order

    return {
        "at": payload.timestamp.isoformat(),
        "pending": Order.objects.filter(status="pending").count(),
    }
