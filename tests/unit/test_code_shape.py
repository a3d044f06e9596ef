"""Size limits of STYLE.md, checked on the source (issue 10): modules of at most 500 lines,
functions of at most 80 lines in the engine, store and Celery layers (60 elsewhere is the
style guide's aim, not checked here)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "celery_trigger"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
#: Package areas where the function limit holds.
LAYERS = ("_engine", "_store", "_celery")


def _long_functions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text("utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            assert node.end_lineno is not None
            length = node.end_lineno - node.lineno + 1
            if length > MAX_FUNCTION_LINES:
                out.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({length})")
    return out


def test_no_module_is_over_500_lines() -> None:
    long = [
        f"{p.relative_to(PACKAGE)} ({n})"
        for p in sorted(PACKAGE.rglob("*.py"))
        if (n := len(p.read_text("utf-8").splitlines())) > MAX_MODULE_LINES
    ]
    assert long == []


def test_no_function_is_over_80_lines_in_the_engine_store_and_celery_layers() -> None:
    long = [
        item
        for layer in LAYERS
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for item in _long_functions(path)
    ]
    assert long == []
