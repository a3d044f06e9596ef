-- log_append: append entries to a run's own log (logger.*, SEMANTICS §14) and keep it
-- within its caps, dropping the oldest entries.
-- KEYS[1] the log stream "<run key>:logs"   KEYS[2] its hash "<run key>:logmeta"
--   (fields "bytes": the bytes the kept entries hold, "dropped": entries dropped so far)
-- ARGV[1] max entries   ARGV[2] max bytes   ARGV[3] ttl (ms) of both keys
-- ARGV[4..] entries (JSON text)
-- Publishes on KEYS[1] (wakes realtime subscribers of Feed.logs).
-- Returns the number of entries this call dropped.
local max_count, max_bytes, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local bytes = tonumber(redis.call("HGET", KEYS[2], "bytes") or "0")
for j = 4, #ARGV do
  redis.call("XADD", KEYS[1], "*", "d", ARGV[j])
  bytes = bytes + string.len(ARGV[j])
end
local count = redis.call("XLEN", KEYS[1])
local dropped = 0
while count > 0 and (count > max_count or bytes > max_bytes) do
  local oldest = redis.call("XRANGE", KEYS[1], "-", "+", "COUNT", 1)[1]
  redis.call("XDEL", KEYS[1], oldest[1])
  bytes = bytes - string.len(oldest[2][2])
  count = count - 1
  dropped = dropped + 1
end
redis.call("HSET", KEYS[2], "bytes", bytes)
if dropped > 0 then redis.call("HINCRBY", KEYS[2], "dropped", dropped) end
redis.call("PEXPIRE", KEYS[1], ttl)
redis.call("PEXPIRE", KEYS[2], ttl)
redis.call("PUBLISH", KEYS[1], "d")
return dropped
