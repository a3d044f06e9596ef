"""The Celery app for a separate worker process: ``celery -A worker worker -Q progress``.

Reads ``REDIS_URL`` (default ``redis://localhost:6379/0``); ``run.py --redis <the same URL>
--no-worker`` then triggers and watches from another process.
"""

from __future__ import annotations

import os

from app import export, make_app

celery = make_app(os.environ.get("REDIS_URL", "redis://localhost:6379/0"))

__all__ = ["celery", "export"]
