"""examples/django_shop runs its own tests with Django's runner, as its README says: a real
worker, PostgreSQL (a test database of its own, dropped afterwards) and the private Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from .conftest import ROOT

EXAMPLE = ROOT / "examples" / "django_shop"
DB_SHOP = 54


def _postgres_answers() -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=1):
            return True
    except OSError:
        return False


def test_django_shop_example_tests_pass(redis_server: str) -> None:
    """DJ-7: order approval over a token URL, on-commit triggers, a schedule edited in the admin."""
    if not _postgres_answers():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL does not answer on 127.0.0.1:5432 but CI is set")
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")
    suffix = uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "REDIS_URL": f"{redis_server}/{DB_SHOP}",
        "SHOP_DB_NAME": "test",
        "SHOP_TEST_DB_NAME": f"test_shop_{suffix}",
        "SHOP_KEY_PREFIX": f"shop{suffix}",
        "SHOP_QUEUE": f"shop-{suffix}",
        "SHOP_BASE_URL": "http://testserver/trigger",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    proc = subprocess.run(
        [sys.executable, "manage.py", "test", "shop", "--noinput", "-v", "2"],
        cwd=EXAMPLE,
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    assert proc.returncode == 0, f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert "Ran 3 tests" in proc.stderr and "OK" in proc.stderr
