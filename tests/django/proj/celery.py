import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django.proj.settings")

app = Celery("djproj")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
