"""Settings of the test project. The test fixtures pass what differs per run in the
environment: the Redis URL, the key prefix, the test database name."""

import os

SECRET_KEY = "django-insecure-test-key-for-celery-trigger-django"
DEBUG = True
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "tests.django.proj.urls"
ASGI_APPLICATION = "tests.django.proj.asgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_celery_beat",
    "celery_trigger_django",
    "tests.django.testapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("CT_DJANGO_DB_HOST", "127.0.0.1"),
        "PORT": os.environ.get("CT_DJANGO_DB_PORT", "5432"),
        "USER": os.environ.get("CT_DJANGO_DB_USER", "postgres"),
        "NAME": os.environ.get("CT_DJANGO_DB_NAME", "test"),
        "TEST": {"NAME": os.environ.get("CT_DJANGO_TEST_DB", "test_celery_trigger_django")},
    }
}

REDIS_URL = os.environ.get("CT_DJANGO_REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CT_DJANGO_QUEUE", "celery")
CELERY_TRIGGER_KEY_PREFIX = os.environ.get("CT_DJANGO_KEY_PREFIX", "djtest")
CELERY_TRIGGER_TIMER_POLL_INTERVAL = 0.02
CELERY_TRIGGER_BASE_URL = "http://testserver/trigger"
if os.environ.get("CT_DJANGO_TRIGGER_SECRET_KEY") is not None:
    CELERY_TRIGGER_SECRET_KEY = os.environ["CT_DJANGO_TRIGGER_SECRET_KEY"]
if os.environ.get("CT_DJANGO_CELERY_APP"):
    CELERY_TRIGGER_APP = os.environ["CT_DJANGO_CELERY_APP"]
