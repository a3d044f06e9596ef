"""The seed's code examples, translated to Python, run against real Redis and a real worker:
the fixtures are the integration suite's (``engine``, ``make_engine``)."""

from tests.integration.conftest import (  # noqa: F401  (pytest fixtures)
    _clean_global_hooks,
    engine,
    make_engine,
)
