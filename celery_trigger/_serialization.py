"""The JSON codec for payloads, outputs and metadata. JSON only: never pickle.

``dumps`` accepts JSON values plus ``datetime``/``date`` (ISO 8601), ``Decimal`` (string),
``UUID`` (string), pydantic models (``model_dump(mode="json")``), dataclasses (``asdict``),
sets/tuples (lists). Anything else raises ``TypeError`` naming the offending path, e.g.
``payload['items'][2]: object of type socket is not JSON serializable``.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

_COMPACT = (",", ":")


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, (Decimal, UUID)):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serializable")


def dumps(value: Any, *, what: str = "payload") -> str:
    """Serialise ``value`` to compact JSON or raise ``TypeError`` naming the bad path."""
    try:
        # ASCII output: valid UTF-8 whatever the input (lone surrogates included), and the
        # C encoder's fastest path.
        return json.dumps(value, default=_default, separators=_COMPACT, allow_nan=False)
    except (TypeError, ValueError) as exc:
        path = _find_bad_path(value, what)
        raise TypeError(f"{path}: {exc}") from None


def loads(text: str | bytes | None) -> Any:
    if text is None or text == "":
        return None
    return json.loads(text)


def to_jsonable(value: Any, *, what: str = "value") -> Any:
    """Round-trip ``value`` through the codec (what a reader of the stored JSON will see)."""
    return json.loads(dumps(value, what=what))


def _find_bad_path(value: Any, path: str) -> str:
    """Walk ``value`` to the first element the codec cannot encode; return its path."""
    if isinstance(value, (str, int, bool)) or value is None:
        return path
    if isinstance(value, float):
        return path
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                return f"{path}[{key!r}] (key)"
            try:
                json.dumps(item, default=_default, allow_nan=False)
            except (TypeError, ValueError):
                return _find_bad_path(item, f"{path}[{key!r}]")
        return path
    if isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            try:
                json.dumps(item, default=_default, allow_nan=False)
            except (TypeError, ValueError):
                return _find_bad_path(item, f"{path}[{index}]")
        return path
    try:
        converted = _default(value)
    except TypeError:
        return path
    return _find_bad_path(converted, path)
