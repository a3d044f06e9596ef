"""Run state: the Store protocols and their two implementations (DESIGN §3).

- ``protocols/``: one ``Protocol`` per concern (runs, durable, tokens, metadata, idempotency,
  slots, timers, schedules, realtime, tasks, connection); ``Store`` is their composite.
- ``types.py``: the values operations take and return (``NewRun``, ``Claim``, ``Feed``...);
  no signature names a key, a client or a Redis structure.
- ``redis/``: ``RedisStore`` (the only package importing ``redis``): ``client.py``
  (connection, script loading, ``wrap_errors``), ``events.py`` (event keys in KEYS), one
  mixin per concern; ``lua/``: one script per multi-key invariant, header = KEYS/ARGV/reply.
- ``memory/``: ``MemoryStore``, the same operations in one process, one mixin per concern.
- ``base.py``: re-exports of the above for callers not yet moved.
"""
