"""Settings, ``ready()`` and ``manage.py check`` of celery-trigger-django, each in a fresh
process of the test project (``tests/django/proj``, the standard Celery layout)."""

from __future__ import annotations

import hashlib
import hmac
import json

from tests.django.helpers import manage, project_env, python

PROJECT_SECRET = "django-insecure-test-key-for-celery-trigger-django"


REPORT = """
import json, django
{before}
django.setup()
from celery_trigger import _definition
from celery_trigger._setup import current
from tests.django.proj.celery import app
engine = current()
print(json.dumps({{
    "same_app": engine.app is app,
    "secret_key": engine.settings.secret_key,
    "key_prefix": engine.settings.key_prefix,
    "max_duration": engine.config.max_duration,
    "celery_task": "dj-echo" in app.tasks,
    "defined": _definition.get("dj-echo") is not None,
}}))
"""


def _report(env: dict[str, str], before: str = "") -> dict[str, object]:
    proc = python(env, REPORT.format(before=before))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_ready_sets_up_the_project_app_from_celery_trigger_settings(
    django_project: dict[str, str],
) -> None:
    """DJ-2: INSTALLED_APPS + the standard layout is all it takes; CELERY_TRIGGER_* apply."""
    # Given the test project with CELERY_TRIGGER_KEY_PREFIX and no CELERY_TRIGGER_SECRET_KEY
    env = project_env(django_project, CT_DJANGO_KEY_PREFIX="fromsettings")
    # When Django starts
    report = _report(env)
    # Then celery-trigger is set up on proj.celery.app with the settings' prefix, the
    # secret derived from SECRET_KEY, and the app's @ct.task definitions discovered
    expected = hmac.new(
        PROJECT_SECRET.encode(), b"celery_trigger_django.secret_key", hashlib.sha256
    ).hexdigest()
    assert report == {
        "same_app": True,
        "secret_key": expected,
        "key_prefix": "fromsettings",
        "max_duration": None,
        "celery_task": True,
        "defined": True,
    }


def test_an_explicit_setup_before_ready_is_kept(django_project: dict[str, str]) -> None:
    """DJ-2: a project that also calls ct.setup(app, ...) itself keeps its options."""
    # Given proj/celery.py's app set up explicitly with an option, before Django is ready
    before = (
        "import celery_trigger as ct\n"
        "from tests.django.proj.celery import app as _app\n"
        "ct.setup(_app, max_duration=77)\n"
    )
    # When Django starts
    report = _report(project_env(django_project), before)
    # Then ready() did not replace that engine, and the derived secret still applies
    assert report["same_app"] is True
    assert report["max_duration"] == 77
    assert len(str(report["secret_key"])) == 64


def test_an_explicit_secret_key_setting_wins(django_project: dict[str, str]) -> None:
    env = project_env(django_project, CT_DJANGO_TRIGGER_SECRET_KEY="x" * 40)
    assert _report(env)["secret_key"] == "x" * 40


def test_check_passes_on_a_good_configuration(django_project: dict[str, str]) -> None:
    proc = manage(project_env(django_project), "check")
    assert proc.returncode == 0, proc.stderr
    assert "no issues" in proc.stdout


def test_check_reports_an_unreachable_store(django_project: dict[str, str]) -> None:
    """DJ-2: E002 when Redis does not answer."""
    env = project_env(django_project, CT_DJANGO_REDIS_URL="redis://127.0.0.1:1/0")
    proc = manage(env, "check")
    assert proc.returncode != 0
    assert "celery_trigger_django.E002" in proc.stderr


def test_check_reports_a_short_secret_key(django_project: dict[str, str]) -> None:
    """DJ-2: E003 when CELERY_TRIGGER_SECRET_KEY is under 32 bytes."""
    proc = manage(project_env(django_project, CT_DJANGO_TRIGGER_SECRET_KEY="short"), "check")
    assert proc.returncode != 0
    assert "celery_trigger_django.E003" in proc.stderr
    assert "E004" not in proc.stderr


def test_check_reports_a_missing_celery_app(django_project: dict[str, str]) -> None:
    """DJ-2: E001 when the Celery app cannot be found."""
    proc = manage(project_env(django_project, CT_DJANGO_CELERY_APP="nowhere:app"), "check")
    assert proc.returncode != 0
    assert "celery_trigger_django.E001" in proc.stderr
