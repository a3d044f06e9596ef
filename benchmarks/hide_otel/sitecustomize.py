"""Makes OpenTelemetry not importable in a process started with this folder on PYTHONPATH,
as if it were not installed (the ``obs`` case's ``no_otel`` worker).

Python imports ``sitecustomize`` at start-up, before anything else could import
OpenTelemetry (redis-py and Celery's plugins would, early). ``sys.modules[name] = None``
makes ``import opentelemetry`` raise ``ModuleNotFoundError`` and
``importlib.util.find_spec("opentelemetry")`` return None.
"""

import sys

sys.modules["opentelemetry"] = None  # type: ignore[assignment]
