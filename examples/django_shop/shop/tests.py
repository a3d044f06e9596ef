"""The shop's tests: real worker (threads, in this process), real PostgreSQL, real Redis.

Run: ``python manage.py test shop`` (REDIS_URL and the database from the environment).
"""

from __future__ import annotations

import json
import time
from typing import Any

from celery.contrib.testing.worker import start_worker
from django.test import Client, TransactionTestCase
from shop_project.celery import app

import celery_trigger as ct

from .models import Order


def wait_for(predicate: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)
    return value


class ShopTests(TransactionTestCase):
    def test_an_order_waits_for_approval_and_is_approved_over_http(self) -> None:
        with start_worker(app, pool="threads", perform_ping_check=False, loglevel="WARNING"):
            # Given an order placed through the shop's view (trigger on commit)
            response = Client().post(
                "/orders/", json.dumps({"item": "teapot"}), content_type="application/json"
            )
            order_id = response.json()["order_id"]
            # When the manager approves through the token's URL
            token = wait_for(lambda: (ct.wait.list_tokens(tags=f"order:{order_id}") or [None])[0])
            path = token.url.split("/trigger/", 1)[1]
            done = Client().post(
                f"/trigger/{path}", json.dumps({"approved": True}), content_type="application/json"
            )
            self.assertEqual(done.status_code, 200)
            # Then the run completes and the order is approved
            wait_for(lambda: Order.objects.get(pk=order_id).status == "approved")
        (run,) = ct.runs.list(tag=f"order:{order_id}")
        self.assertEqual(run.status, ct.RunStatus.COMPLETED)

    def test_a_refused_order_triggers_nothing(self) -> None:
        response = Client().post("/orders/", "{}", content_type="application/json")
        self.assertEqual(response.status_code, 400)
        self.assertFalse(Order.objects.exists())
        self.assertEqual(list(ct.runs.list(task_identifier="shop-approve-order")), [])

    def test_a_schedule_edited_in_the_admin(self) -> None:
        from celery_trigger_django.schedules import sync
        from django.contrib.auth.models import User
        from django_celery_beat.models import CrontabSchedule

        # Given a nightly report schedule and the admin's periodic task list
        schedule = ct.schedules.create(
            task="shop-stock-report", cron="0 2 * * *", deduplication_key="stock-report"
        )
        admin = Client()
        admin.force_login(User.objects.create_superuser("boss", "boss@example.com", "pw"))
        page = admin.get("/admin/django_celery_beat/periodictask/")
        self.assertContains(page, schedule.id)
        sync()
        # When the manager moves it to 06:30 Paris time
        crontab = CrontabSchedule.objects.get(periodictask__kwargs__contains=schedule.id)
        crontab.hour, crontab.minute, crontab.timezone = "6", "30", "Europe/Paris"
        crontab.save()
        # Then the celery-trigger schedule follows
        updated = ct.schedules.retrieve(schedule.id)
        self.assertEqual((updated.cron, updated.timezone), ("30 6 * * *", "Europe/Paris"))
