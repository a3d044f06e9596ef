"""Issue 15 / D-21: no option is accepted and then dropped. Every ``Settings`` field and every
``TriggerConfig`` field has a reader in the package outside the config module, and every
trigger option is read by ``prepare`` (the integration test
``test_every_trigger_option_shows_up_where_documented`` checks where each one shows up)."""

from __future__ import annotations

import dataclasses
import pathlib
import re

import celery_trigger
from celery_trigger._config import Settings, TriggerConfig
from celery_trigger._engine.prepare import TRIGGER_OPTIONS

PACKAGE = pathlib.Path(celery_trigger.__file__).parent
#: Fields read through a property of the settings (``Settings.retention_ms``): the property
#: must be read outside the config module instead.
READ_AS = {"run_retention": "retention_ms"}


def _sources() -> str:
    return "\n".join(p.read_text() for p in PACKAGE.rglob("*.py") if p.name != "_config.py")


def test_every_setting_and_config_field_has_a_reader() -> None:
    text = _sources()
    names = {f.name for f in dataclasses.fields(Settings)} | {
        f.name for f in dataclasses.fields(TriggerConfig)
    }
    unread = {n for n in names - {"config"} if not re.search(rf"\.{READ_AS.get(n, n)}\b", text)}
    assert not unread, f"accepted but never read: {sorted(unread)}"


def test_every_trigger_option_is_read_when_a_run_is_prepared() -> None:
    text = (PACKAGE / "_engine" / "prepare.py").read_text()
    # the reads, without the declaration of the accepted names
    reads = re.sub(r"TRIGGER_OPTIONS = frozenset\(.*?\n\)\n", "", text, flags=re.S)
    unread = {o for o in TRIGGER_OPTIONS if not re.search(rf"""["']{o}["']""", reads)}
    assert not unread, f"trigger options never read: {sorted(unread)}"
