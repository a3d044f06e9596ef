"""The vocabulary is spelled once (``celery_trigger/_vocab.py``): no Lua script and no other
Python module of the package quotes a run status or a timer-kind prefix.

Lua scripts get ``S``/``FINAL``/``W``/``T``/``E`` from ``lua_prelude()`` at load; Python code
uses ``RunStatus``, ``TimerKind.X.member(...)`` and ``EventKind``.
"""

from __future__ import annotations

import re
from pathlib import Path

import celery_trigger
from celery_trigger._vocab import RunStatus, TimerKind, lua_prelude

PACKAGE = Path(celery_trigger.__file__).parent
VOCABULARY_MODULE = PACKAGE / "_vocab.py"
#: Directories whose ``.py`` and ``.lua`` files must not spell the vocabulary (recursively):
#: the whole package.
CHECKED_DIRECTORIES = (PACKAGE,)

_STATUSES = "|".join(re.escape(s.value) for s in RunStatus)
_KINDS = "|".join(re.escape(k.value) for k in TimerKind)
_STATUS = re.compile(r"""(["'])(""" + _STATUSES + r""")\1""")
_TIMER = re.compile(r"""f?(["'])(""" + _KINDS + r""")\|(?:\1|\{)""")


def _checked_files() -> list[Path]:
    files = [
        path
        for directory in CHECKED_DIRECTORIES
        for pattern in ("*.py", "*.lua")
        for path in directory.rglob(pattern)
    ]
    return sorted(path for path in files if path != VOCABULARY_MODULE)


def _offences(pattern: re.Pattern[str]) -> list[str]:
    out: list[str] = []
    for path in _checked_files():
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if pattern.search(line):
                out.append(f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}")
    return out


def test_checked_directories_hold_lua_and_python_files() -> None:
    # Given the checked directories / Then the scan is not vacuous
    names = {path.suffix for path in _checked_files()}
    assert names == {".py", ".lua"}


def test_no_status_literal_outside_the_vocabulary_module() -> None:
    # When every checked file is scanned / Then no quoted status appears (D-6)
    assert _offences(_STATUS) == []


def test_no_timer_kind_prefix_outside_the_vocabulary_module() -> None:
    # When every checked file is scanned / Then no "<kind>|" or f"<kind>|{" appears
    assert _offences(_TIMER) == []


def test_patterns_catch_what_they_must() -> None:
    # Given lines that spell the vocabulary / Then both patterns flag them
    assert _STATUS.search('if status == "QUEUED" then')
    assert _STATUS.search("status='TIMED_OUT'")
    assert _TIMER.search('redis.call("ZADD", k, t, "lease|" .. id)')
    assert _TIMER.search('f"pub|{run_id}"')
    # and leave the vocabulary's own spelling alone
    assert not _STATUS.search("S.QUEUED")
    assert not _TIMER.search("T.lease .. id")


def test_lua_prelude_defines_every_name() -> None:
    # Given the prelude / Then every status, timer kind and final status is defined in it
    prelude = lua_prelude()
    for status in RunStatus:
        assert f'{status.name}="{status.value}"' in prelude
    for kind in TimerKind:
        assert f'{kind.value}="{kind.value}|"' in prelude
