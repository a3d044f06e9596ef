"""Side-by-side benchmarks: celery-trigger against bare Celery on the same private Redis.

Run ``python -m benchmarks.run`` (see ``benchmarks/README.md``). Nothing here is imported by
the library; the worker subprocesses import ``benchmarks.app_bare`` / ``benchmarks.app_ct``.
"""
