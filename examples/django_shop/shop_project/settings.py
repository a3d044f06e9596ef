"""Settings of the example shop. REDIS_URL and the database come from the environment."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-example-shop-key-change-me")
DEBUG = True
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "shop_project.urls"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django_celery_beat",
    "celery_trigger_django",
    "shop",
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
        "HOST": os.environ.get("SHOP_DB_HOST", "127.0.0.1"),
        "USER": os.environ.get("SHOP_DB_USER", "postgres"),
        "NAME": os.environ.get("SHOP_DB_NAME", "shop"),
        "TEST": {"NAME": os.environ.get("SHOP_TEST_DB_NAME", "test_shop")},
    }
}

REDIS_URL = os.environ.get("REDIS_URL", "redis://localhost:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("SHOP_QUEUE", "shop")
CELERY_TRIGGER_KEY_PREFIX = os.environ.get("SHOP_KEY_PREFIX", "shop")
CELERY_TRIGGER_BASE_URL = os.environ.get("SHOP_BASE_URL", "http://localhost:8000/trigger")
