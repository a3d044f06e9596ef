-- wake: a parked run's timer is due (duration wait, or the fallback after notify).
-- KEYS[1] run hash
-- Returns the record when the run is WAITING (it is marked woken; the caller publishes the
-- resume), else an empty reply.
if redis.call("HGET", KEYS[1], "status") ~= S.WAITING then return {} end
redis.call("HSET", KEYS[1], "woken", "1")
return redis.call("HGETALL", KEYS[1])
