"""Run and batch idempotency keys on Redis (``IdempotencyStore``); ``idem_clear.lua``
is the compare-and-delete of a run key.
"""

from __future__ import annotations

from .client import RedisBase


class RedisIdempotency(RedisBase):
    """Run and batch idempotency keys on Redis (``IdempotencyStore``); ``idem_clear.lua``"""

    def idempotency_owner(self, task_id: str, key: str) -> str | None:
        value = self._client.get(self.keys.idempotency(task_id, key))
        return None if value is None else str(value)

    def release_idempotency_key(
        self, task_id: str, key: str, owner: str, *, clear_record: bool
    ) -> bool:
        return bool(
            self._scripts["idem_clear"](
                keys=[self.keys.idempotency(task_id, key), self.keys.run(owner)],
                args=[owner, "1" if clear_record else "0"],
            )
        )

    def delete_idempotency_key(self, task_id: str, key: str) -> bool:
        return bool(self._client.delete(self.keys.idempotency(task_id, key)))

    def get_batch_key(self, key: str) -> str | None:
        value = self._client.get(self.keys.batch_idempotency(key))
        return None if value is None else str(value)

    def claim_batch_key(self, key: str, batch_id: str, ttl_ms: int) -> str:
        name = self.keys.batch_idempotency(key)
        pipe = self._client.pipeline(transaction=True)
        pipe.set(name, batch_id, nx=True, px=ttl_ms)
        pipe.get(name)
        return str(pipe.execute()[1])
