"""The JSON codec for payloads, outputs and metadata. JSON only: never pickle.

``dumps`` accepts JSON values plus ``datetime``/``date`` (ISO 8601), ``Decimal`` (string),
``UUID`` (string), pydantic models (``model_dump(mode="json")``), dataclasses (``asdict``),
sets/tuples (lists). Anything else raises ``TypeError`` naming the offending path, e.g.
``payload['items'][2]: object of type socket is not JSON serializable``.

A value that cannot round-trip raises ``ValueError`` instead of being stored changed or
crashing the encoder: nesting deeper than ``MAX_DEPTH`` levels (the decoders of workers and
of Redis's cjson stop near 1,000, and a deeper stack fails sooner), a circular reference,
non-finite floats, integers too long to print, and dicts whose keys collide once
converted to JSON strings (``{1: "a", "1": "b"}``).
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

_COMPACT = (",", ":")
#: Deepest nesting of lists and dicts a stored value may have.
MAX_DEPTH = 200


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
        text = json.dumps(value, default=_default, separators=_COMPACT, allow_nan=False)
    except RecursionError:
        raise ValueError(f"{what} is nested more than {MAX_DEPTH} levels deep") from None
    except (TypeError, ValueError) as exc:
        if "Circular reference" in str(exc):
            raise ValueError(f"{what} contains a circular reference") from None
        path = _find_bad_path(value, what, 0)
        if isinstance(exc, ValueError):  # out-of-range floats, integers too long to print
            raise ValueError(f"{path}: {exc}") from None
        raise TypeError(f"{path}: {exc}") from None
    _check_shape(value, what)
    return text


def loads(text: str | bytes | None) -> Any:
    if text is None or text == "":
        return None
    return json.loads(text)


def to_jsonable(value: Any, *, what: str = "value") -> Any:
    """Round-trip ``value`` through the codec (what a reader of the stored JSON will see)."""
    return json.loads(dumps(value, what=what))


def _json_key(key: Any) -> Any:
    """The JSON object key ``json.dumps`` writes for a dict key (None for unsupported)."""
    if isinstance(key, str):
        return key
    if key is True or key is False or key is None:
        return json.dumps(key)
    if isinstance(key, (int, float)):
        return float.__repr__(key) if isinstance(key, float) else int.__repr__(key)
    return None


def _check_shape(value: Any, what: str) -> None:
    """Depth and key collisions of an encodable value, walked once without recursion.

    Only containers are visited; dicts whose keys are all strings (the usual case) cost a
    single pass over their keys.
    """
    stack: list[tuple[Any, int, str]] = [(value, 0, what)]
    seen: set[int] = set()
    while stack:
        node, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueError(f"{what} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, dict):
            if id(node) in seen:
                continue
            seen.add(id(node))
            if not all(type(k) is str for k in node):
                keys = [_json_key(k) for k in node]
                if len(set(keys)) != len(keys):
                    raise ValueError(
                        f"{path}: keys {list(node)!r} collide once converted to JSON strings"
                    )
            stack.extend(
                (v, depth + 1, path) for v in node.values() if isinstance(v, (dict, list, tuple))
            )
        elif isinstance(node, (list, tuple)):
            if id(node) in seen:
                continue
            seen.add(id(node))
            stack.extend((v, depth + 1, path) for v in node if isinstance(v, (dict, list, tuple)))


def _find_bad_path(value: Any, path: str, depth: int) -> str:
    """Walk ``value`` to the first element the codec cannot encode; return its path."""
    if depth > MAX_DEPTH:
        return path
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
                return _find_bad_path(item, f"{path}[{key!r}]", depth + 1)
        return path
    if isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            try:
                json.dumps(item, default=_default, allow_nan=False)
            except (TypeError, ValueError):
                return _find_bad_path(item, f"{path}[{index}]", depth + 1)
        return path
    try:
        converted = _default(value)
    except TypeError:
        return path
    return _find_bad_path(converted, path, depth + 1)
