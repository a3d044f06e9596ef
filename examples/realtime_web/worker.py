"""The Celery app for a separate worker: ``celery -A worker worker -Q realtime-web --pool threads``.

Reads ``REDIS_URL`` and ``TRIGGER_SECRET_KEY`` (shared with ``server.py``).
"""

from __future__ import annotations

import os

from app import make_app

celery = make_app(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))
