-- idem_clear: release an idempotency key held by a given run (reset, expiry).
-- KEYS[1] the idempotency key (idem:{task}:{key})   KEYS[2] the owner's run hash
-- ARGV[1] the owner run id   ARGV[2] "1" to also clear the key from the owner's record
-- Compare-and-delete: a key that another run owns by now is left alone.
-- Returns 1 when the key was released, 0 when ARGV[1] did not own it.
if redis.call("GET", KEYS[1]) ~= ARGV[1] then return 0 end
redis.call("DEL", KEYS[1])
if ARGV[2] == "1" then redis.call("HDEL", KEYS[2], "idem", "idem_key", "idem_exp") end
return 1
