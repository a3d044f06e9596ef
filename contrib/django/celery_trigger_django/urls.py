"""``path("trigger/", include("celery_trigger_django.urls"))``.

Mounts the waitpoint token routes (WSGI and ASGI) and the realtime SSE and trigger routes
(ASGI). Set ``CELERY_TRIGGER_BASE_URL`` to the public origin plus this mount path
(``https://example.com/trigger``) so ``token.url`` points here.
"""

from __future__ import annotations

from django.urls import re_path

from . import views

app_name = "celery_trigger"

urlpatterns = [
    re_path(r"^(?P<path>realtime/.*|api/v1/tasks/.*)$", views.realtime, name="realtime"),
    re_path(r"^(?P<path>.*)$", views.tokens, name="tokens"),
]
