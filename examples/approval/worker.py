"""The Celery app for a separate worker process: ``celery -A worker worker -Q approval``.

Reads ``REDIS_URL``, ``TRIGGER_SECRET_KEY`` (shared with ``server.py``) and
``TRIGGER_BASE_URL`` (where ``server.py`` is reachable, default ``http://localhost:8000``).
"""

from __future__ import annotations

import os

from app import make_app

celery = make_app(
    os.environ.get("REDIS_URL", "redis://localhost:6379/0"),
    base_url=os.environ.get("TRIGGER_BASE_URL", "http://localhost:8000"),
)
