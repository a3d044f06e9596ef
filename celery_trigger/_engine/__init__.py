"""The engine: the run state machine on top of the store, with no Celery in it.

What lives here (``docs/architecture.md`` has the picture):

- the handle: ``engine.py`` (``Engine``, ``current()``), ``broker.py`` (the interface the
  Celery layer implements), ``registry.py`` (``TaskSpec``, the task registry, global hooks);
- creating runs: ``prepare.py`` (validation, records), ``dispatch.py`` (create + publish,
  the only publisher), ``triggering.py``, ``batches.py``, ``batch_keys.py``,
  ``idempotency.py``;
- executing runs: ``attempt/`` (phases and participants), ``contexts.py``, ``state.py``,
  ``hooks.py``, ``backoff.py``, ``aio.py``, ``watchdog.py``;
- durability: ``journal.py`` (ordinals, replay, ``Park``), ``waits.py``, ``waiters.py``,
  ``tokens.py``;
- time: ``timers.py`` (the timer service), ``schedules.py``, ``cron.py``, ``clock.py``;
- queues: ``slots.py`` (which sub-queue), ``concurrency.py`` (release, promote, reap);
- run control and worker start: ``control.py`` (cancel, replay, reschedule), ``sync.py``;
- metadata and realtime: ``metadata.py``, ``streams.py``, ``hub.py``.

Modules import only each other (without cycles) and the layers below (``_store``, the
vocabulary, keys and types); ``tests/unit/test_layers.py`` checks it.
"""
