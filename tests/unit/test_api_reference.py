"""Issue 15: every public name of the package is listed in ``docs/api-reference.md`` with an
example: each name in ``celery_trigger.__all__`` and each public name of its namespaces (their
``__all__``, else the functions and classes the namespace module defines)."""

from __future__ import annotations

import inspect
import pathlib
import types

import celery_trigger as ct

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "api-reference.md"


def _namespace_names(module: types.ModuleType) -> set[str]:
    names = getattr(module, "__all__", None)
    if names is not None:
        return set(names)
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module.__name__
    }


def _public_names() -> set[str]:
    names: set[str] = set()
    for name in ct.__all__:
        names.add(f"ct.{name}")
        value = getattr(ct, name)
        if isinstance(value, types.ModuleType):
            names |= {f"ct.{name}.{inner}" for inner in _namespace_names(value)}
    return names


def test_every_public_name_is_in_the_api_reference() -> None:
    text = DOC.read_text()
    missing = sorted(n for n in _public_names() if f"`{n}`" not in text)
    assert not missing, f"add to docs/api-reference.md: {missing}"
