"""Retries: a retry policy, ``catch_error`` choosing per error, and hooks seeing the outcome.

Three runs of one task that charges a card through a flaky payment API:

- ``ok``: fails twice with a timeout (retried by the policy), then succeeds on attempt 3;
- ``rate-limited``: the API says "retry after 300 ms"; ``catch_error`` retries after exactly
  that long instead of the policy's delay;
- ``declined``: the card is declined; ``catch_error`` skips retrying, the run fails after one
  attempt and ``on_failure`` runs.

Run it with no services (embedded) or against Redis::

    python examples/retries/app.py
    python examples/retries/app.py --redis redis://localhost:6379/0
"""

from __future__ import annotations

import argparse
from typing import Any

from celery import Celery

import celery_trigger as ct
from celery_trigger.testing import run_worker, wait_for_run


class PaymentTimeout(Exception):
    """The payment API did not answer in time: worth retrying with backoff."""


class RateLimited(Exception):
    """The payment API asks us to come back after ``retry_after_ms``."""

    def __init__(self, retry_after_ms: int) -> None:
        super().__init__(f"rate limited, retry after {retry_after_ms} ms")
        self.retry_after_ms = retry_after_ms


class CardDeclined(Exception):
    """The card was declined: retrying cannot help."""


def charge_via_api(scenario: str, attempt: int) -> str:
    """A stand-in for the payment API: how it behaves depends on the scenario and attempt."""
    if scenario == "ok" and attempt < 3:
        raise PaymentTimeout(f"payment API timed out (attempt {attempt})")
    if scenario == "rate-limited" and attempt == 1:
        raise RateLimited(retry_after_ms=300)
    if scenario == "declined":
        raise CardDeclined("card declined: insufficient funds")
    return f"ch_{scenario}_{attempt}"


def catch_error(payload: dict[str, Any], error: Exception, ctx: ct.Context) -> Any:
    """Decide per error: ``None`` lets the retry policy decide."""
    if isinstance(error, RateLimited):
        return {"retry_delay_in_ms": error.retry_after_ms}
    if isinstance(error, CardDeclined):
        return {"skip_retrying": True}
    return None


def on_failure(payload: dict[str, Any], error: Exception, ctx: ct.Context) -> None:
    print(f"  on_failure: {payload['scenario']} gave up: {error}", flush=True)


@ct.task(
    id="retries-charge-card",
    retry=ct.RetryOptions(max_attempts=4, factor=2, min_timeout_in_ms=50, randomize=False),
    catch_error=catch_error,
    on_failure=on_failure,
)
def charge_card(payload: dict[str, Any], ctx: ct.Context) -> dict[str, Any]:
    """Charge a card; the payment API is flaky."""
    print(f"  {payload['scenario']}: attempt {ctx.attempt.number}", flush=True)
    charge_id = charge_via_api(payload["scenario"], ctx.attempt.number)
    return {"charge_id": charge_id}


def make_app(redis_url: str | None) -> Celery:
    """A Celery app with celery-trigger installed: embedded without a URL, else on Redis."""
    if redis_url is None:
        app = Celery("retries", broker="memory://localhost/", backend="cache+memory://")
        app.conf.trigger_store = "memory"
    else:
        app = Celery("retries", broker=redis_url, backend=redis_url)
    ct.setup(app)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="celery-trigger retries example")
    parser.add_argument("--redis", metavar="URL", help="use Redis at URL (default: embedded)")
    args = parser.parse_args(argv)
    app = make_app(args.redis)
    with run_worker(app):
        for scenario in ("ok", "rate-limited", "declined"):
            # One run at a time, so the printed attempts read in order.
            run = wait_for_run(charge_card.trigger({"scenario": scenario}), timeout=30)
            outcome = run.output if run.error is None else f"{run.error.name}: {run.error.message}"
            attempts = f"{run.attempt_count} attempt{'s' if run.attempt_count != 1 else ''}"
            print(f"{scenario}: {run.status} after {attempts} ({outcome})")


if __name__ == "__main__":
    main()
