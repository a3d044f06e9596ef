"""Realtime subscription sources: what a subscription follows, and every store read it makes
(SEMANTICS §12.1, DESIGN §7).

A source names the event streams whose appends wake its subscription (``event_keys``) and
answers which runs to read: ``start`` once, after the hub watches those keys, ``changed``
after each wake-up. It also reads the run records and the runs' realtime stream chunks. The
public ``realtime.RunSubscription`` owns iteration, ordering, views and cursors and reaches
the store only through its source.

Invariants:
- the run record is the truth; an event only says "look again";
- a tag or batch source takes its stream's tail *before* it lists its runs, so a run
  announced in between is read (twice at worst), never skipped; after an outage
  (``resync``), or when the stream was trimmed past its position, it lists them again;
- a stream read returns every entry after the given position (pages are read until a short
  one), so a caller that advances its position entry by entry skips nothing.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from .._serialization import loads
from .._store.base import Feed, Record
from ..errors import RunNotFoundError
from ..result import Run
from .engine import Engine

#: The name subscriptions give the run's own log among its streams (``logger.*`` records).
LOG_STREAM = "$log"
#: Entries of a stream read per store call.
CHUNK_PAGE = 1000
#: Run ids of a tag's index listed per store call.
TAG_PAGE = 500
#: The position before a stream's first entry.
STREAM_START = "0-0"

#: ``(entry id, entry fields)``
StreamEntry = tuple[str, dict[str, str]]


def stream_entries(engine: Engine, key: Feed, after: str) -> list[StreamEntry]:
    """Every entry of the stream ``key`` after the entry id ``after``, oldest first."""
    out: list[StreamEntry] = []
    while True:
        entries = engine.store.read_stream(key, after, CHUNK_PAGE)
        out.extend(entries)
        if entries:
            after = entries[-1][0]
        if len(entries) < CHUNK_PAGE:
            return out


def after(a: str, b: str) -> bool:
    """Stream id ``a`` comes after ``b``."""
    ams, _, aseq = a.partition("-")
    bms, _, bseq = b.partition("-")
    return (int(ams), int(aseq or 0)) > (int(bms), int(bseq or 0))


class Source:
    """What a subscription follows: which event streams wake it and which runs to read."""

    stop_on_completion = False

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def event_keys(self) -> list[Feed]:
        raise NotImplementedError

    def start(self) -> list[str]:
        """Run ids to read first; called once, after the hub watches ``event_keys``."""
        raise NotImplementedError

    def changed(self, resync: bool) -> list[str]:
        """Run ids to read again after a wake-up."""
        raise NotImplementedError

    def accept(self, run: Run) -> bool:
        return True

    def records(self, run_ids: Sequence[str]) -> list[Record | None]:
        """The records of ``run_ids`` (None for a run that does not exist)."""
        return list(self.engine.store.get_runs(list(run_ids)))

    def chunk_key(self, run_id: str, stream: str) -> Feed:
        """Run ``run_id``'s realtime stream ``stream`` (appends wake on it); ``LOG_STREAM``
        names the run's own log."""
        return Feed.logs(run_id) if stream == LOG_STREAM else Feed.stream(run_id, stream)

    def chunks(self, run_id: str, stream: str, position: str) -> list[StreamEntry]:
        """The chunks of run ``run_id``'s stream ``stream`` after ``position``."""
        return stream_entries(self.engine, self.chunk_key(run_id, stream), position)


class RunSource(Source):
    """One run: woken by its own event stream."""

    def __init__(self, engine: Engine, run_id: str, stop_on_completion: bool) -> None:
        super().__init__(engine)
        self.run_id = run_id
        self.stop_on_completion = stop_on_completion
        self.events_key = Feed.run(run_id)

    def event_keys(self) -> list[Feed]:
        return [self.events_key]

    def start(self) -> list[str]:
        return [self.run_id]

    def changed(self, resync: bool) -> list[str]:
        return [self.run_id]

    def record(self) -> Record | None:
        return self.engine.store.get_run(self.run_id)


class IndexSource(Source):
    """Runs announced on a tag's or a batch's event stream (entries ``{r: run id}``)."""

    def __init__(self, engine: Engine, key: Feed) -> None:
        super().__init__(engine)
        self.key = key
        self.position = STREAM_START

    def event_keys(self) -> list[Feed]:
        return [self.key]

    def start(self) -> list[str]:
        self.position = self.engine.store.stream_tail(self.key)
        return self.listing()

    def listing(self) -> list[str]:
        raise NotImplementedError

    def changed(self, resync: bool) -> list[str]:
        ids: dict[str, None] = {}
        first = self.engine.store.read_stream(self.key, STREAM_START, 1)
        if resync or (first and after(first[0][0], self.position)):
            # after an outage, or the stream was trimmed past our position: list them again
            ids.update(dict.fromkeys(self.listing()))
        for entry_id, entry in stream_entries(self.engine, self.key, self.position):
            self.position = entry_id
            if entry.get("r"):
                ids[entry["r"]] = None
        return list(ids)


class TagSource(IndexSource):
    """Runs carrying every one of ``tags``, created within the last ``window_s`` seconds."""

    def __init__(self, engine: Engine, tags: list[str], window_s: float) -> None:
        super().__init__(engine, Feed.tag(tags[0]))
        self.tags = tags
        self.cutoff_ms = int((time.time() - window_s) * 1000)

    def listing(self) -> list[str]:
        out: list[str] = []
        before: tuple[int, str] | None = None
        while True:
            page = self.engine.store.list_run_ids(index=self.tags[0], before=before, count=TAG_PAGE)
            for run_id, created in page:
                if created < self.cutoff_ms:
                    return out[::-1]
                out.append(run_id)
            if len(page) < TAG_PAGE:
                return out[::-1]  # oldest first, like the events that follow
            last_id, last_ms = page[-1]
            before = (last_ms, last_id)  # the index cursor is (score, member)

    def accept(self, run: Run) -> bool:
        created = run.created_at.timestamp() * 1000 if run.created_at else 0
        return created >= self.cutoff_ms and all(t in run.tags for t in self.tags)


class BatchSource(IndexSource):
    """The runs of one batch."""

    def __init__(self, engine: Engine, batch_id: str) -> None:
        super().__init__(engine, Feed.batch(batch_id))
        self.batch_id = batch_id

    def listing(self) -> list[str]:
        record = self.engine.store.get_batch(self.batch_id)
        runs: list[str] = loads(record.get("runs")) if record else []
        return runs or []

    def accept(self, run: Run) -> bool:
        return run.batch_id == self.batch_id


def run_source(engine: Engine, run_id: str, *, stop_on_completion: bool) -> RunSource:
    """The source of a subscription to one run; ``RunNotFoundError`` for an unknown id."""
    if engine.store.get_run(run_id) is None:
        raise RunNotFoundError(f"no run with id {run_id!r}")
    return RunSource(engine, run_id, stop_on_completion)


def tag_source(engine: Engine, tags: list[str], window_s: float) -> TagSource:
    """The source of a subscription to the runs carrying all of ``tags``."""
    return TagSource(engine, tags, window_s)


def batch_source(engine: Engine, batch_id: str) -> BatchSource:
    """The source of a subscription to a batch; ``RunNotFoundError`` for an unknown id."""
    if engine.store.get_batch(batch_id) is None:
        raise RunNotFoundError(f"no batch with id {batch_id!r}")
    return BatchSource(engine, batch_id)
