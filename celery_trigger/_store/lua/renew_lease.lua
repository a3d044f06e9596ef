-- renew_lease: extend a live attempt lease (heartbeat).
-- KEYS[1] run hash   ARGV[1] lease token   ARGV[2] new lease expiry (ms)
-- Returns 1 when renewed, 0 when the lease is no longer the caller's (never revives one).
local r = redis.call("HMGET", KEYS[1], "status", "lease")
if r[1] ~= "EXECUTING" or r[2] ~= ARGV[1] then return 0 end
redis.call("HSET", KEYS[1], "lease_exp", ARGV[2])
return 1
