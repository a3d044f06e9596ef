"""Run metadata operations as pure functions (SEMANTICS §8.2): validate, apply, collapse.

One operation is a dict ``{"type", "key"?, "value"?}`` with the upstream wire types ``set``,
``delete``, ``append``, ``remove``, ``increment`` and ``update`` (``replace``: the whole
document). The run's local copy and ``MemoryStore`` apply operations with ``apply``;
``_store/lua/metadata_apply.lua`` is the same algorithm for Redis, and the store contract
suite holds the two to one behaviour.

Invariants:
- a key starting ``$.`` is a JSON path of ``.``-separated segments; a segment addresses an
  object member, or an existing element of an array by its decimal index; a path ``set``
  creates the objects it needs, but never grows an array (that operation is unapplied);
- ``__proto__``, ``constructor`` and ``prototype`` are never keys or path segments;
- ``delete`` takes top-level keys only; ``remove`` on a non-array is unapplied;
- ``increment`` treats a missing or non-number value (booleans included) as 0;
- equality is JSON equality: ``true`` is not ``1``, ``1`` is ``1.0``;
- ``encode`` is the canonical stored form: compact, keys sorted, UTF-8 (the Lua encoder
  writes the same bytes, so both stores measure the size limit alike).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

OP_TYPES = frozenset({"set", "delete", "append", "remove", "increment", "update"})
UNSAFE_KEYS = frozenset({"__proto__", "constructor", "prototype"})
_MISSING: Any = object()


def path_of(key: str) -> list[str] | None:
    """The segments of a ``$.`` path, or None for a plain top-level key."""
    return key[2:].split(".") if key.startswith("$.") else None


def check_key(key: object, *, allow_path: bool = True) -> str:
    """Validate an operation key; raise ``TypeError``/``ValueError`` naming the problem."""
    if not isinstance(key, str):
        raise TypeError(f"metadata keys must be strings, got {type(key).__name__}")
    if not key:
        raise ValueError("metadata keys must not be empty")
    segments = path_of(key)
    if segments is not None:
        if not allow_path:
            raise ValueError(f"metadata.del_ takes a top-level key, not the JSON path {key!r}")
        if any(not s for s in segments):
            raise ValueError(f"metadata path {key!r} has an empty segment")
    for part in segments or [key]:
        if part in UNSAFE_KEYS:
            raise ValueError(
                f"metadata key {key!r} is not allowed: __proto__, constructor and "
                "prototype are reserved"
            )
    return key


def check_document(doc: object, what: str = "metadata") -> dict[str, Any]:
    """A whole document (``replace``, trigger ``metadata``): an object with safe top-level
    keys and only valid Unicode (the stores keep UTF-8)."""
    if not isinstance(doc, Mapping):
        raise TypeError(f"{what} must be a dict, got {type(doc).__name__}")
    for key in doc:
        if not isinstance(key, str):
            raise TypeError(f"{what} keys must be strings, got {key!r}")
        if key in UNSAFE_KEYS:
            raise ValueError(
                f"{what} key {key!r} is not allowed: __proto__, constructor and "
                "prototype are reserved"
            )
    check_unicode(doc, what)
    return dict(doc)


def check_unicode(value: Any, what: str) -> None:
    """Reject lone surrogates: they cannot be stored as UTF-8."""
    try:
        json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(
            f"{what} contains a string that is not valid Unicode (a lone surrogate)"
        ) from None


def check_number(value: object, what: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return value


def json_equal(a: Any, b: Any) -> bool:
    """Deep JSON equality: booleans are not numbers; ``1 == 1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _index(container: list[Any], segment: str) -> int | None:
    if not segment.isdigit():
        return None
    index = int(segment)
    return index if index < len(container) else None


def get_path(doc: dict[str, Any], segments: Sequence[str]) -> Any:
    cur: Any = doc
    for seg in segments:
        if isinstance(cur, dict):
            cur = cur.get(seg, _MISSING)
        elif isinstance(cur, list):
            index = _index(cur, seg)
            cur = _MISSING if index is None else cur[index]
        else:
            return _MISSING
        if cur is _MISSING:
            return _MISSING
    return cur


def set_path(doc: dict[str, Any], segments: Sequence[str], value: Any) -> bool:
    """Set the value at a path, creating objects; False (nothing changed) when an array
    is addressed with an index it does not have."""
    cur: Any = doc
    for depth, seg in enumerate(segments):
        last = depth == len(segments) - 1
        if isinstance(cur, list):
            index = _index(cur, seg)
            if index is None:
                return False
            if last:
                cur[index] = value
                return True
            nxt = cur[index]
            if not isinstance(nxt, (dict, list)):
                nxt = cur[index] = {}
        else:
            if last:
                cur[seg] = value
                return True
            nxt = cur.get(seg)
            if not isinstance(nxt, (dict, list)):
                nxt = cur[seg] = {}
        cur = nxt
    return True


def _get(doc: dict[str, Any], key: str) -> Any:
    segments = path_of(key)
    return doc.get(key, _MISSING) if segments is None else get_path(doc, segments)


def _put(doc: dict[str, Any], key: str, value: Any) -> bool:
    segments = path_of(key)
    if segments is None:
        doc[key] = value
        return True
    return set_path(doc, segments, value)


def apply_one(doc: dict[str, Any], op: Mapping[str, Any]) -> tuple[dict[str, Any], bool, bool]:
    """Apply one operation in place; its value becomes part of the document (pass a copy
    when the caller keeps the operation). Returns ``(document, applied, changed)``."""
    kind, key = op["type"], op.get("key", "")
    value: Any = op.get("value")
    if kind == "update":
        return value, True, not json_equal(doc, value)
    if kind == "delete":
        if key in doc:
            del doc[key]
            return doc, True, True
        return doc, True, False
    current = _get(doc, key)
    if kind == "set":
        changed = current is _MISSING or not json_equal(current, value)
        return doc, _put(doc, key, value), changed
    if kind == "append":
        if current is _MISSING:
            new: Any = [value]
        elif isinstance(current, list):
            new = [*current, value]
        else:
            new = [current, value]
        ok = _put(doc, key, new)
        return doc, ok, ok
    if kind == "remove":
        if not isinstance(current, list):
            return doc, False, False
        kept = [item for item in current if not json_equal(item, value)]
        return doc, _put(doc, key, kept), len(kept) != len(current)
    if kind == "increment":
        base = current if isinstance(current, (int, float)) and not isinstance(current, bool) else 0
        ok = _put(doc, key, base + value)
        return doc, ok, ok and (base is not current or value != 0)
    return doc, False, False


def apply(doc: dict[str, Any], ops: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], bool]:
    """Apply operations in order to ``doc`` (mutated; the operations are not: their values
    are copied in); ``(document, any applied)``."""
    applied = False
    for op in ops:
        doc, ok, _ = apply_one(doc, copy.deepcopy(dict(op)))
        applied = applied or ok
    return doc, applied


def collapse(ops: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shrink a queue before sending: consecutive same-key ``set``s keep the last, consecutive
    same-key ``increment``s are summed, consecutive same-key ``delete``s keep one. Only
    neighbours merge, so the order of everything else (and the result) is unchanged."""
    out: list[dict[str, Any]] = []
    for op in ops:
        prev = out[-1] if out else None
        if prev is not None and prev["type"] == op["type"] and prev.get("key") == op.get("key"):
            if op["type"] in ("set", "delete"):
                out[-1] = op
                continue
            if op["type"] == "increment":
                out[-1] = {**prev, "value": prev["value"] + op["value"]}
                continue
        out.append(op)
    return out


def encode(doc: Mapping[str, Any]) -> str:
    """The stored form: compact JSON, keys sorted, UTF-8 (``ValueError`` if not finite)."""
    return json.dumps(
        doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
    )


def check_operation(op: object) -> dict[str, Any]:
    """Validate one operation given to ``runs.update_metadata(operations=...)``."""
    if not isinstance(op, Mapping) or op.get("type") not in OP_TYPES:
        raise ValueError(
            f"a metadata operation is a dict with 'type' one of "
            f"{', '.join(sorted(OP_TYPES))}; got {op!r}"
        )
    kind = op["type"]
    if kind == "update":
        return {"type": kind, "value": check_document(op.get("value"))}
    key = check_key(op.get("key"), allow_path=kind != "delete")
    if kind == "delete":
        return {"type": kind, "key": key}
    value = op.get("value")
    if kind == "increment":
        value = check_number(value, "increment value")
    check_unicode(value, "metadata value")
    return {"type": kind, "key": key, "value": value}
