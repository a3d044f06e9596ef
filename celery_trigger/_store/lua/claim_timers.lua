-- claim_timers: hand due timer members to one caller under a lease.
-- KEYS[1] timers   KEYS[2] timers:claimed
-- ARGV[1] now (ms)   ARGV[2] max members   ARGV[3] claim lease (ms)
-- Returns the claimed members. A claim whose lease ran out (its worker died mid-action)
-- goes back to the timers set first, so every member is acted on at least once.
local now, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
local stale = redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", now, "LIMIT", 0, limit)
for _, m in ipairs(stale) do
  redis.call("ZREM", KEYS[2], m)
  redis.call("ZADD", KEYS[1], now, m)
end
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, limit)
local exp = now + tonumber(ARGV[3])
for _, m in ipairs(due) do
  redis.call("ZREM", KEYS[1], m)
  redis.call("ZADD", KEYS[2], exp, m)
end
return due
