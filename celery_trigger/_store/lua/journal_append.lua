-- journal_append: record durable operation k of the current attempt.
-- KEYS[1] run hash   KEYS[2] journal   ARGV[1] lease token   ARGV[2] k   ARGV[3] entry (JSON)
-- Appends only while the caller holds the lease and the journal has exactly k entries.
-- Returns the journal length afterwards, or -1 when the lease is not the caller's.
local r = redis.call("HMGET", KEYS[1], "status", "lease")
if r[1] ~= S.EXECUTING or r[2] ~= ARGV[1] then return -1 end
if redis.call("LLEN", KEYS[2]) == tonumber(ARGV[2]) then redis.call("RPUSH", KEYS[2], ARGV[3]) end
return redis.call("LLEN", KEYS[2])
