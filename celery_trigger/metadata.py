"""Run metadata (``ct.metadata.*``, SEMANTICS §8): a JSON document per run, updated live.

Example::

    @ct.task(id="import-rows")
    def import_rows(payload, ctx):
        ct.metadata.set("status", "importing").set("$.progress.total", len(payload["rows"]))
        for row in payload["rows"]:
            save(row)
            ct.metadata.increment("$.progress.done")
            ct.metadata.parent.increment("rows_imported")   # the run that triggered this one
        return "ok"

    ct.runs.retrieve(run_id).metadata   # {"status": "importing", "progress": {...}}

Inside a run every mutator applies to a local copy at once (``get``/``current`` read it) and
is sent to Redis within ``trigger_metadata_flush_interval`` (1 s), when the run waits, and
when the attempt ends; ``flush()`` sends now. Operations are applied to the stored document
in one script, so the run, its children (``metadata.parent`` / ``metadata.root``) and
``runs.update_metadata`` never lose each other's updates. Outside a run the mutators do
nothing and ``get``/``current`` return ``None``. Bad input (unsafe keys such as
``__proto__``, values that are not JSON, non-numbers to ``increment``) raises at the call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _metadata_ops as _ops
from ._engine import metadata as _meta
from ._engine import streams as _streams
from ._engine.state import current_state
from ._serialization import to_jsonable


def _value(value: Any) -> Any:
    converted = to_jsonable(value, what="metadata value")
    _ops.check_unicode(converted, "metadata value")
    return converted


def _send(target: str, op: dict[str, Any]) -> None:
    state = current_state()
    if state is None or _meta.replaying(state):
        return  # outside a run: a silent no-op; replaying: already applied before the park
    _meta.for_state(state).mutate(target, op)


class MetadataUpdater:
    """Chainable mutators of one document: this run's, its parent's or its root's.

    Example: ``ct.metadata.parent.increment("done").append("log", "child finished")``.
    """

    __slots__ = ("_target",)

    def __init__(self, target: str) -> None:
        self._target = target

    def set(self, key: str, value: Any) -> MetadataUpdater:
        """Set a top-level key, or a nested value with a ``$.`` path (objects are created)."""
        _send(self._target, {"type": "set", "key": _ops.check_key(key), "value": _value(value)})
        return self

    def del_(self, key: str) -> MetadataUpdater:
        """Remove a top-level key (JSON paths are not supported here)."""
        _send(self._target, {"type": "delete", "key": _ops.check_key(key, allow_path=False)})
        return self

    def append(self, key: str, value: Any) -> MetadataUpdater:
        """Append to the list at ``key`` (missing → ``[value]``, scalar → ``[old, value]``)."""
        _send(self._target, {"type": "append", "key": _ops.check_key(key), "value": _value(value)})
        return self

    def remove(self, key: str, value: Any) -> MetadataUpdater:
        """Remove every element equal to ``value`` from the list at ``key``."""
        _send(self._target, {"type": "remove", "key": _ops.check_key(key), "value": _value(value)})
        return self

    def increment(self, key: str, value: int | float = 1) -> MetadataUpdater:
        """Add ``value`` to the number at ``key`` (missing or not a number counts as 0)."""
        _send(
            self._target,
            {
                "type": "increment",
                "key": _ops.check_key(key),
                "value": _ops.check_number(value, "increment value"),
            },
        )
        return self

    def decrement(self, key: str, value: int | float = 1) -> MetadataUpdater:
        """Subtract ``value`` (on ``parent``/``root``: its absolute value, as upstream)."""
        number = _ops.check_number(value, "decrement value")
        return self.increment(key, -number if self._target == "self" else -abs(number))

    def replace(self, metadata: Mapping[str, Any]) -> MetadataUpdater:
        """Replace the whole document with ``metadata``."""
        doc = _ops.check_document(to_jsonable(_ops.check_document(metadata)))
        _send(self._target, {"type": "update", "value": doc})
        return self

    def stream(self, key: str, source: Any) -> Any:
        """Publish each item of ``source`` (an iterable or async iterable) as a chunk of
        the realtime stream ``key`` of this updater's run, yielding the same items back.

        Example: ``for token in ct.metadata.parent.stream("llm", chunks): ...``.
        """
        return _streams.stream(self._target, key, source)

    def flush(self) -> None:
        """Send this run's queued operations now, ending a chain as upstream's updater does.

        Example: ``ct.metadata.set("status", "done").increment("steps").flush()``.
        """
        _flush_now()

    def __repr__(self) -> str:
        return f"<metadata updater of {'this run' if self._target == 'self' else self._target}>"


#: Mutators of the parent run's document (the run itself when it has no parent).
parent = MetadataUpdater("parent")
#: Mutators of the root run's document (the first run of the trigger chain).
root = MetadataUpdater("root")
_self = MetadataUpdater("self")


def set(key: str, value: Any) -> MetadataUpdater:
    """Set ``key`` (or a ``$.`` path). Example: ``ct.metadata.set("progress", 0.5)``."""
    return _self.set(key, value)


def del_(key: str) -> MetadataUpdater:
    """Remove a top-level key. Example: ``ct.metadata.del_("temp")``."""
    return _self.del_(key)


def append(key: str, value: Any) -> MetadataUpdater:
    """Append to a list. Example: ``ct.metadata.append("logs", "step 1 done")``."""
    return _self.append(key, value)


def remove(key: str, value: Any) -> MetadataUpdater:
    """Remove equal elements from a list. Example: ``ct.metadata.remove("todo", "a")``."""
    return _self.remove(key, value)


def increment(key: str, value: int | float = 1) -> MetadataUpdater:
    """Add to a number. Example: ``ct.metadata.increment("processed")``."""
    return _self.increment(key, value)


def decrement(key: str, value: int | float = 1) -> MetadataUpdater:
    """Subtract from a number. Example: ``ct.metadata.decrement("remaining", 2)``."""
    return _self.decrement(key, value)


def replace(metadata: Mapping[str, Any]) -> None:
    """Replace the whole document. Example: ``ct.metadata.replace({"step": "done"})``."""
    _self.replace(metadata)


def stream(key: str, source: Any) -> Any:
    """Publish each item of ``source`` as a chunk of this run's realtime stream ``key`` and
    yield it back (sync or async, like ``source``); subscribers read it with
    ``runs.subscribe_to_run(id).with_streams()``. Outside a run the items just pass through.

    Example::

        for chunk in ct.metadata.stream("openai", completion):   # or: async for
            text += chunk
    """
    return _self.stream(key, source)


def get(key: str) -> Any:
    """A top-level value of the local copy (``None`` outside a run or when unset).

    Example: ``ct.metadata.get("progress")``.
    """
    state = current_state()
    if state is None:
        return None
    return _meta.for_state(state).get(key)


def current() -> dict[str, Any] | None:
    """The whole local copy; ``None`` outside a run, or before a run without trigger-time
    metadata first changes it. Example: ``ct.metadata.current() or {}``."""
    state = current_state()
    if state is None:
        return None
    return _meta.for_state(state).current()


def flush() -> None:
    """Send the queued operations now (errors are logged, not raised).

    Example: ``ct.metadata.set("status", "done"); ct.metadata.flush()``.
    """
    _flush_now()


def _flush_now() -> None:
    state = current_state()
    if state is not None:
        _meta.flush_state(state)


def refresh() -> None:
    """Re-read the stored document into the local copy, to see writes made by children or
    the API. Example: ``ct.metadata.refresh(); ct.metadata.get("done")``."""
    state = current_state()
    if state is not None:
        _meta.for_state(state).refresh()


__all__ = [
    "MetadataUpdater",
    "append",
    "current",
    "decrement",
    "del_",
    "flush",
    "get",
    "increment",
    "parent",
    "refresh",
    "remove",
    "replace",
    "root",
    "set",
    "stream",
]
