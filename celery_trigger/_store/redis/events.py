"""The event keys a run's scripts touch, passed in ``KEYS`` (``lua/events.lua``).

A script that emits a run's change event writes to the run's event channel, its batch's event
stream and the event stream of each of its tags. Every key a script touches arrives in
``KEYS`` (a precondition for Redis Cluster), so the store must name those keys before the
call, although only the record knows the run's tags and batch. The scheme is optimistic:

- ``IdentityCache`` keeps ``run id -> (tags, batch)`` for the runs this store has seen
  (records it created, read or got back from a script), bounded (least recently used out);
- a run it has not seen is guessed to have neither tags nor batch (most runs), so the call
  costs no extra round trip when the guess is right;
- the script checks the passed identity against the record before it writes anything and
  answers ``STALE_KEYS {"t": tags JSON, "b": batch}`` when the record has a batch or a tag
  the keys do not cover; the store calls again with those values (``MAX_STALE_RETRIES``).

A run's batch never changes and its tags only grow (``tags.add``), so a second call is
enough unless tags are added between the two calls.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..._keys import Keys

#: Prefix of the error reply of ``events_stale`` in ``lua/events.lua``.
STALE_REPLY = "STALE_KEYS"
#: Calls of one script after a stale reply before the store gives up.
MAX_STALE_RETRIES = 3
#: Runs whose identity one store remembers.
IDENTITY_CACHE_SIZE = 4096


@dataclass(frozen=True)
class RunIdentity:
    """What a run's event keys are built from: its tags and its batch id ("" = none)."""

    tags: tuple[str, ...] = ()
    batch: str = ""

    @classmethod
    def of_record(cls, record: Mapping[str, str]) -> RunIdentity:
        """The identity a run record states (fields ``tags``, JSON, and ``batch``)."""
        return cls(_tags(record.get("tags")), record.get("batch") or "")


NO_IDENTITY = RunIdentity()


def _tags(text: str | None) -> tuple[str, ...]:
    if not text or text == "[]":
        return ()
    return tuple(str(tag) for tag in json.loads(text))


def stale_identity(message: str) -> RunIdentity | None:
    """The record's identity from a ``STALE_KEYS`` error reply, None for any other error."""
    if not message.startswith(STALE_REPLY):
        return None
    body = json.loads(message[len(STALE_REPLY) :])
    return RunIdentity(_tags(str(body.get("t") or "")), str(body.get("b") or ""))


class IdentityCache:
    """Bounded, thread-safe ``run id -> RunIdentity`` (least recently used out)."""

    def __init__(self, size: int = IDENTITY_CACHE_SIZE) -> None:
        self._size = size
        self._items: OrderedDict[str, RunIdentity] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str) -> RunIdentity:
        """The remembered identity, or the guess "no tags, no batch"."""
        with self._lock:
            found = self._items.get(run_id)
            if found is None:
                return NO_IDENTITY
            self._items.move_to_end(run_id)
            return found

    def put(self, run_id: str, identity: RunIdentity) -> None:
        with self._lock:
            self._items[run_id] = identity
            self._items.move_to_end(run_id)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def remember(self, run_id: str, record: Mapping[str, str] | None) -> None:
        """Note the identity a record states (nothing for a missing record)."""
        if record and "id" in record:
            self.put(run_id, RunIdentity.of_record(record))


def event_block(
    keys: Keys, run_id: str, identity: RunIdentity, extra_tags: Sequence[str] = ()
) -> tuple[list[str], str]:
    """The KEYS tail and the last ARGV of ``lua/events.lua`` for a run."""
    tags = list(dict.fromkeys([*identity.tags, *extra_tags]))
    names = [
        keys.events(run_id),
        keys.batch_events(identity.batch) if identity.batch else "",
        *(keys.tag_events(tag) for tag in tags),
    ]
    spec = json.dumps({"b": identity.batch, "t": tags}, separators=(",", ":"))
    return names, spec
