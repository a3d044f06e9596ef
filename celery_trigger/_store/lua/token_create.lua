-- token_create: create a waitpoint token, or return the live one owning the idempotency key.
-- KEYS[1] token hash   KEYS[2] idempotency key ("" = none)   KEYS[3] timers
-- KEYS[4] tokens by creation (sorted set)   KEYS[5..] tag sorted sets
-- ARGV[1] token id   ARGV[2] now (ms)   ARGV[3] key ttl (ms, 0 = never expires)
-- ARGV[4] timeout at (ms, "" = never)   ARGV[5..] field/value pairs
-- Returns {token id, cached (0|1)}.
-- #include timer_wake
if KEYS[2] ~= "" then
  local owner = redis.call("GET", KEYS[2])
  if owner then return {owner, 1} end
  if tonumber(ARGV[3]) > 0 then
    redis.call("SET", KEYS[2], ARGV[1], "PX", ARGV[3])
  else
    redis.call("SET", KEYS[2], ARGV[1])
  end
end
local fields = {}
for j = 5, #ARGV do fields[#fields + 1] = ARGV[j] end
redis.call("HSET", KEYS[1], unpack(fields))
redis.call("ZADD", KEYS[4], ARGV[2], ARGV[1])
for k = 5, #KEYS do redis.call("ZADD", KEYS[k], ARGV[2], ARGV[1]) end
if ARGV[4] ~= "" then add_timer(KEYS[3], ARGV[4], T.tokento .. ARGV[1]) end
return {ARGV[1], 0}
