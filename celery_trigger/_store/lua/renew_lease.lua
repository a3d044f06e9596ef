-- renew_lease: extend a live attempt lease (heartbeat), and the run's concurrency slot.
-- KEYS[1] run hash   KEYS[2] slots (slot leases, slots.lua; optional)
-- ARGV[1] lease token   ARGV[2] new lease expiry (ms)
-- Returns 1 when renewed, 0 when the lease is no longer the caller's (never revives one).
-- Also 0 when the run holds a slot (field slot) that lapsed and was reaped: an attempt that
-- lost its slot must stop, or its queue could run over its limit.
local r = redis.call("HMGET", KEYS[1], "status", "lease", "slot", "id")
if r[1] ~= S.EXECUTING or r[2] ~= ARGV[1] then return 0 end
if KEYS[2] and r[3] and r[3] ~= "" then
  if not redis.call("ZSCORE", KEYS[2], r[4]) then return 0 end
  redis.call("ZADD", KEYS[2], ARGV[2], r[4])
end
redis.call("HSET", KEYS[1], "lease_exp", ARGV[2])
return 1
