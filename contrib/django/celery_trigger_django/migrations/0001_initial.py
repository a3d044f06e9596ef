"""Unmanaged models only: no table is created (see models.py)."""

from django.db import migrations, models


def _model(name: str, verbose: str) -> migrations.CreateModel:
    return migrations.CreateModel(
        name=name,
        fields=[("id", models.CharField(max_length=128, primary_key=True, serialize=False))],
        options={
            "verbose_name": verbose,
            "verbose_name_plural": f"{verbose}s",
            "managed": False,
            "default_permissions": ("view", "change"),
            "abstract": False,
        },
    )


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [
        _model("Run", "run"),
        _model("WaitpointToken", "waitpoint token"),
        _model("Queue", "queue"),
    ]
