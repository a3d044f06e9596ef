"""Admin pages for runs, waitpoint tokens and queues, read from the celery-trigger store.

Each page is a ``ModelAdmin`` of an unmanaged model (``models.py``) whose URLs are replaced
by views calling the public API (``ct.runs``, ``ct.wait``, ``ct.queues``); no run data is
copied into the database. Staff only (``AdminSite.admin_view``); ``view_*`` permission to
see, ``change_*`` to act; actions are POST with Django's CSRF protection.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import datetime, time, timezone
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse

import celery_trigger as ct
from celery_trigger._vocab import WaitpointStatus

PAGE_SIZE = 50
#: How many recent runs a search by tag or idempotency key scans.
SEARCH_SCAN = 1000


def pretty(value: Any) -> str:
    """JSON for display (dates and other values as strings)."""
    return json.dumps(value, indent=2, sort_keys=True, default=str)


class StoreAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """A ModelAdmin whose pages come from the store, not from a table."""

    list_template = ""
    detail_template = ""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        info = f"{self.opts.app_label}_{self.opts.model_name}"
        wrap = self.admin_site.admin_view
        return [
            path("", wrap(self.list_view), name=f"{info}_changelist"),
            path(
                "<path:object_id>/do/<str:action>/", wrap(self.action_view), name=f"{info}_action"
            ),
            path("<path:object_id>/", wrap(self.detail_view), name=f"{info}_change"),
        ]

    def url(self, name: str, *args: Any) -> str:
        return reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_{name}",
            args=args,
        )

    def render(self, request: HttpRequest, template: str, **context: Any) -> HttpResponse:
        base = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "has_change_permission": self.has_change_permission(request),
            "changelist_url": self.url("changelist"),
        }
        return TemplateResponse(request, template, {**base, **context})

    def _require(self, request: HttpRequest, change: bool = False) -> None:
        allowed = (
            self.has_change_permission(request) if change else self.has_view_permission(request)
        )
        if not allowed:
            raise PermissionDenied

    def list_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request)
        return self.render(request, self.list_template, **self.list_context(request))

    def detail_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        self._require(request)
        return self.render(request, self.detail_template, **self.detail_context(request, object_id))

    def action_view(self, request: HttpRequest, object_id: str, action: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponse(status=405, headers={"Allow": "POST"})
        self._require(request, change=True)
        handler: Callable[[HttpRequest, str], str] | None = self.actions_by_name().get(action)
        if handler is None:
            raise Http404(f"no action {action!r}")
        try:
            target = handler(request, object_id)
        except (ct.TriggerError, ValueError, TypeError) as exc:
            messages.error(request, f"{action} failed: {exc}")
            target = self.url("change", object_id)
        return HttpResponseRedirect(target)

    def actions_by_name(self) -> dict[str, Callable[[HttpRequest, str], str]]:
        return {}

    def list_context(self, request: HttpRequest) -> dict[str, Any]:
        raise NotImplementedError

    def detail_context(self, request: HttpRequest, object_id: str) -> dict[str, Any]:
        raise NotImplementedError


def _day(text: str | None, end: bool) -> datetime | None:
    if not text:
        return None
    day = datetime.strptime(text, "%Y-%m-%d").date()
    return datetime.combine(day, time.max if end else time.min, tzinfo=timezone.utc)


class RunAdmin(StoreAdmin):
    list_template = "admin/celery_trigger_django/run_list.html"
    detail_template = "admin/celery_trigger_django/run_detail.html"

    def list_context(self, request: HttpRequest) -> dict[str, Any]:
        q = request.GET
        query = (q.get("q") or "").strip()
        try:
            filters: dict[str, Any] = {
                "status": q.get("status") or None,
                "task_identifier": q.get("task") or None,
                "tag": q.get("tag") or None,
                "from_": _day(q.get("from"), end=False),
                "to": _day(q.get("to"), end=True),
            }
        except ValueError:
            messages.error(request, "Dates are YYYY-MM-DD")
            filters = {}
        page = max(1, int(q.get("page") or 1)) if (q.get("page") or "1").isdigit() else 1
        runs = self._search(query, filters, page)
        more = len(runs) > PAGE_SIZE
        params = {k: v for k, v in q.items() if k != "page" and v}
        return {
            "title": "Runs",
            "runs": [(r, self.url("change", r.id)) for r in runs[:PAGE_SIZE]],
            "statuses": [s.value for s in ct.RunStatus],
            "params": params,
            "query": query,
            "page": page,
            "previous_query": _query({**params, "page": page - 1}) if page > 1 else None,
            "next_query": _query({**params, "page": page + 1}) if more else None,
        }

    def _search(self, query: str, filters: dict[str, Any], page: int) -> list[ct.Run]:
        if query.startswith("run_"):
            try:
                return [ct.runs.retrieve(query)]
            except ct.RunNotFoundError:
                return []
        listing = ct.runs.list(limit=100, **filters)
        start = (page - 1) * PAGE_SIZE
        if not query:
            return list(itertools.islice(listing, start, start + PAGE_SIZE + 1))
        matches = (
            run
            for run in itertools.islice(listing, SEARCH_SCAN)
            if query in run.tags or run.idempotency_key == query
        )
        return list(itertools.islice(matches, start, start + PAGE_SIZE + 1))

    def detail_context(self, request: HttpRequest, object_id: str) -> dict[str, Any]:
        try:
            run = ct.runs.retrieve(object_id)
        except ct.RunNotFoundError:
            raise Http404(f"no run {object_id!r}") from None
        logs = getattr(ct.runs, "logs", None)
        return {
            "title": f"Run {run.id}",
            "run": run,
            "payload": pretty(run.payload),
            "output": pretty(run.output),
            "metadata": pretty(run.metadata),
            "error": run.error,
            "parent_url": self.url("change", run.parent_id) if run.parent_id else None,
            "root_url": self.url("change", run.root_id) if run.root_id else None,
            "children": [(c, self.url("change", c)) for c in run.children],
            "logs": logs(run.id) if callable(logs) else None,
            "cancel_url": self.url("action", run.id, "cancel"),
            "replay_url": self.url("action", run.id, "replay"),
        }

    def actions_by_name(self) -> dict[str, Callable[[HttpRequest, str], str]]:
        return {"cancel": self._cancel, "replay": self._replay}

    def _cancel(self, request: HttpRequest, run_id: str) -> str:
        ct.runs.cancel(run_id)
        messages.success(request, f"Run {run_id} cancelled")
        return self.url("change", run_id)

    def _replay(self, request: HttpRequest, run_id: str) -> str:
        handle = ct.runs.replay(run_id)
        messages.success(request, f"Run {run_id} replayed as {handle.id}")
        return self.url("change", handle.id)


def _query(params: dict[str, Any]) -> str:
    from urllib.parse import urlencode

    return "?" + urlencode(params)


TOKEN_STATUSES = tuple(status.value for status in WaitpointStatus)


class WaitpointTokenAdmin(StoreAdmin):
    list_template = "admin/celery_trigger_django/token_list.html"
    detail_template = "admin/celery_trigger_django/token_detail.html"

    def list_context(self, request: HttpRequest) -> dict[str, Any]:
        status = request.GET.get("status") or None
        tag = request.GET.get("tag") or None
        tokens = ct.wait.list_tokens(
            status=status if status in TOKEN_STATUSES else None, tags=tag, limit=100
        )
        return {
            "title": "Waitpoint tokens",
            "tokens": [(t, self.url("change", t.id)) for t in tokens],
            "statuses": TOKEN_STATUSES,
            "params": {"status": status or "", "tag": tag or ""},
        }

    def detail_context(self, request: HttpRequest, object_id: str) -> dict[str, Any]:
        try:
            token = ct.wait.retrieve_token(object_id)
        except ct.TokenNotFoundError:
            raise Http404(f"no waitpoint token {object_id!r}") from None
        return {
            "title": f"Waitpoint token {token.id}",
            "token": token,
            "output": pretty(token.output),
            "complete_url": self.url("action", token.id, "complete"),
        }

    def actions_by_name(self) -> dict[str, Callable[[HttpRequest, str], str]]:
        return {"complete": self._complete}

    def _complete(self, request: HttpRequest, token_id: str) -> str:
        text = request.POST.get("data", "").strip() or "null"
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"the output is not JSON ({exc})") from None
        ct.wait.complete_token(token_id, data)
        messages.success(request, f"Token {token_id} completed")
        return self.url("change", token_id)


class QueueAdmin(StoreAdmin):
    list_template = "admin/celery_trigger_django/queue_list.html"
    detail_template = "admin/celery_trigger_django/queue_list.html"

    def list_context(self, request: HttpRequest) -> dict[str, Any]:
        queues = ct.queues.list(per_page=100)
        return {
            "title": "Queues",
            "queues": [
                (
                    q,
                    self.url("action", q.name, "resume" if q.paused else "pause"),
                )
                for q in queues
            ],
        }

    def detail_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return HttpResponseRedirect(self.url("changelist"))

    def actions_by_name(self) -> dict[str, Callable[[HttpRequest, str], str]]:
        return {"pause": self._pause, "resume": self._resume}

    def _pause(self, request: HttpRequest, name: str) -> str:
        ct.queues.pause(name)
        messages.success(request, f"Queue {name} paused")
        return self.url("changelist")

    def _resume(self, request: HttpRequest, name: str) -> str:
        ct.queues.resume(name)
        messages.success(request, f"Queue {name} resumed")
        return self.url("changelist")
