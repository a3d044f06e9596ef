-- token_complete: the first completion (or the timeout) of a token wins.
-- KEYS[1] token hash   KEYS[2] timers   KEYS[3] the token's waiters set
-- ARGV[1] now (ms)   ARGV[2] new status (COMPLETED | TIMED_OUT)   ARGV[3] field   ARGV[4] value
-- Returns {"missing"} | {"done"} (already completed or timed out: nothing changes) |
-- {"ok", waiter...} (the runs parked on it, as "<run>|<k>"; "notify|token:<id>" is scheduled
-- as a safety net until the caller has notified them).
-- #include timer_wake
local status = redis.call("HGET", KEYS[1], "status")
if not status then return {"missing"} end
if status ~= W.WAITING then return {"done"} end
local id = redis.call("HGET", KEYS[1], "id")
redis.call("HSET", KEYS[1], "status", ARGV[2], "completed_at", ARGV[1], ARGV[3], ARGV[4])
redis.call("ZREM", KEYS[2], T.tokento .. id)
local waiters = redis.call("SMEMBERS", KEYS[3])
if #waiters > 0 then
  add_timer(KEYS[2], tonumber(ARGV[1]) + 5000, T.notify .. "token:" .. id)
end
return {"ok", unpack(waiters)}
