"""Every Redis key name, in one place (DESIGN §3). Nothing else builds key strings.

All keys share a configurable prefix (``trigger_key_prefix``, default ``ct``) so several
projects or test cases can share one Redis without touching each other.
"""

from __future__ import annotations

from urllib.parse import quote, unquote


class Keys:
    """Key builder bound to one prefix: ``Keys("ct").run("run_a") == "ct:run:run_a"``."""

    __slots__ = ("prefix",)

    def __init__(self, prefix: str = "ct") -> None:
        self.prefix = prefix

    def run(self, run_id: str) -> str:
        """Hash: the run record."""
        return f"{self.prefix}:run:{run_id}"

    def children(self, run_id: str) -> str:
        """List: child run ids in trigger order."""
        return f"{self.prefix}:run:{run_id}:children"

    def meta(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}:meta"

    def journal(self, run_id: str) -> str:
        return f"{self.prefix}:run:{run_id}:journal"

    def waiters(self, member: str) -> str:
        """Set: ``<run>|<k>`` tags of runs parked on a run or (``token:<id>``) a token."""
        if member.startswith("token:"):
            return f"{self.prefix}:token:{member[6:]}:waiters"
        return f"{self.prefix}:run:{member}:waiters"

    def awaiting(self, run_id: str) -> str:
        """Set: members a parked run still waits for (child run ids, ``token:<id>``)."""
        return f"{self.prefix}:run:{run_id}:awaiting"

    def status_holder(self, member: str) -> str:
        """The hash whose ``status`` field says whether ``member`` is resolved."""
        if member.startswith("token:"):
            return self.token(member[6:])
        return self.run(member)

    def token(self, token_id: str) -> str:
        """Hash: a waitpoint token (status, output, timeout, tags)."""
        return f"{self.prefix}:token:{token_id}"

    def token_idempotency(self, key: str) -> str:
        """String: the token owning an idempotency key (environment-wide, raw: D-15)."""
        return f"{self.prefix}:tokenidem:{key}"

    def tokens_by_created(self) -> str:
        return f"{self.prefix}:tokens:by_created"

    def token_tag(self, tag: str) -> str:
        return f"{self.prefix}:tokentag:{tag}"

    def wait_idempotency(self, key: str) -> str:
        """String: the wake-up time (ms) of a duration wait with an idempotency key."""
        return f"{self.prefix}:waitidem:{key}"

    def events(self, run_id: str) -> str:
        """Pub/sub channel: the run's change events (``lua/events.lua``), wake-ups for its
        subscribers (no stream is kept under this name)."""
        return f"{self.prefix}:run:{run_id}:events"

    def tag_events(self, tag: str) -> str:
        """Stream: change events ``{r: run id, k: kind}`` of every run carrying ``tag``."""
        return f"{self.prefix}:tagev:{tag}"

    def batch_events(self, batch_id: str) -> str:
        """Stream: change events ``{r: run id, k: kind}`` of the batch's runs."""
        return f"{self.prefix}:batchev:{batch_id}"

    def run_stream(self, run_id: str, key: str) -> str:
        """Stream: the chunks ``{d: JSON}`` of the run's realtime stream ``key``."""
        return f"{self.prefix}:run:{run_id}:stream:{key}"

    def run_logs(self, run_id: str) -> str:
        """Stream: the run's own log, entries ``{d: JSON LogEntry}`` (``log_append.lua``)."""
        return f"{self.prefix}:run:{run_id}:logs"

    def run_logs_meta(self, run_id: str) -> str:
        """Hash: ``bytes`` held and ``dropped`` entries of the run's log."""
        return f"{self.prefix}:run:{run_id}:logmeta"

    def hub(self, hub_id: str) -> str:
        """Pub/sub channel that wakes one process's realtime hub (new keys to listen for)."""
        return f"{self.prefix}:hub:{hub_id}"

    def token_use(self, token_id: str) -> str:
        """String: a single-use public token (its ``jti``) has been used; expires with it."""
        return f"{self.prefix}:tokenuse:{token_id}"

    def batch(self, batch_id: str) -> str:
        """Hash: batch record (run ids as a JSON list, counts)."""
        return f"{self.prefix}:batch:{batch_id}"

    def idempotency(self, task_id: str, key: str) -> str:
        """String with TTL: the run id that owns an idempotency key of a task."""
        return f"{self.prefix}:idem:{task_id}:{key}"

    def batch_idempotency(self, key: str) -> str:
        """String with TTL (24 h): the batch created under a batch idempotency key."""
        return f"{self.prefix}:batchidem:{key}"

    def tag(self, tag: str) -> str:
        """Sorted set: run ids carrying ``tag`` scored by creation time (ms)."""
        return f"{self.prefix}:tag:{tag}"

    def by_created(self) -> str:
        """Sorted set: every run id scored by creation time (ms)."""
        return f"{self.prefix}:runs:by_created"

    def timers(self) -> str:
        """Sorted set: timer member → due time (ms)."""
        return f"{self.prefix}:timers"

    def timers_claimed(self) -> str:
        """Sorted set: claimed timer member → claim lease expiry (ms)."""
        return f"{self.prefix}:timers:claimed"

    def queues(self) -> str:
        """Set: names of every known queue."""
        return f"{self.prefix}:queues"

    def queue(self, name: str) -> str:
        """Hash: a queue's settings (concurrency_limit, paused)."""
        return f"{self.prefix}:queue:{name}"

    # concurrency slots (DESIGN §6, ``_engine/concurrency.py``) -------------------------
    @staticmethod
    def subqueue(queue: str, ckey: str | None = None) -> str:
        """The id of a (sub-)queue: the queue, or the queue and a concurrency key.

        Both parts are percent-encoded (``/`` kept), so the id never contains ``:`` or ``|``
        and every (queue, key) pair has its own id: ``subqueue("user-1", "a:b")`` is
        ``"user-1:a%3Ab"``.
        """
        sub = quote(queue, safe="/")
        return f"{sub}:{quote(ckey, safe='')}" if ckey else sub

    @staticmethod
    def split_subqueue(sub: str) -> tuple[str, str]:
        """``subqueue`` reversed: ``(queue, concurrency key or "")``."""
        queue, _, ckey = sub.partition(":")
        return unquote(queue), unquote(ckey)

    def slot_waiting(self, sub: str) -> str:
        """Sorted set: runs a (sub-)queue cannot admit yet → order (queued time - priority)."""
        return f"{self.prefix}:q:{sub}:waiting"

    def queue_subs(self, queue: str) -> str:
        """Set: ids of the queue's sub-queues that have waiting runs."""
        return f"{self.prefix}:qsubs:{quote(queue, safe='/')}"

    def slots(self) -> str:
        """Sorted set: every run holding a concurrency slot → slot lease expiry (ms)."""
        return f"{self.prefix}:slots"

    def slots_sub(self) -> str:
        """Hash: run id → its sub-queue id, for runs holding a slot or ready for one."""
        return f"{self.prefix}:slots:sub"

    def slots_count(self) -> str:
        """Hash: sub-queue id → its runs holding a slot plus those ready for one."""
        return f"{self.prefix}:slots:count"

    def slots_unclaimed(self) -> str:
        """Set: runs in line since their creation whose own message no worker claimed yet."""
        return f"{self.prefix}:slots:unclaimed"

    def slots_ready(self) -> str:
        """Sorted set: runs their sub-queue admitted, waiting for an environment slot → order."""
        return f"{self.prefix}:slots:ready"

    def task_defs(self) -> str:
        """Hash: task id → JSON of its stored definition defaults (the 'deployed' tasks)."""
        return f"{self.prefix}:tasks"

    def pending_version(self, task_id: str) -> str:
        """Sorted set: runs of an unknown task waiting for a worker that defines it."""
        return f"{self.prefix}:pending:{task_id}"

    def schedule(self, schedule_id: str) -> str:
        """Hash: a schedule (cron, timezone, task, active, next_run, last_run, ...).

        An imperative schedule's id is derived from its deduplication key (and a declarative
        one's from its task id), so the upsert script addresses the one hash a key names and
        no separate ``schedule:dedup:{key}`` index is needed (DESIGN §8).
        """
        return f"{self.prefix}:schedule:{schedule_id}"

    def schedules(self) -> str:
        """Sorted set: every schedule id scored by creation time (ms), for paging."""
        return f"{self.prefix}:schedules"
