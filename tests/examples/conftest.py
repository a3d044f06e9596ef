"""Helpers for the example and README tests: run Python files as subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: An example or snippet that takes longer than this has hung.
SUBPROCESS_TIMEOUT_S = 90


def run_python(*args: str, cwd: Path = ROOT) -> str:
    """Run ``python *args`` with this interpreter; return stdout, failing on a non-zero exit."""
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )
    return proc.stdout
