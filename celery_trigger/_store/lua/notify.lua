-- notify: one awaited member of a parked run has resolved; wake the run when none is left.
-- KEYS[1] waiting run hash   KEYS[2] its awaiting set   KEYS[3] timers
-- ARGV[1] now (ms)   ARGV[2] journal position k the run waits at   ARGV[3] the member
-- ARGV[4] safety delay (ms) of the fallback resume timer
-- Idempotent (SREM): notifying twice, or for a wait the run has left, changes nothing; so
-- does a member this wait does not await (a stale notify from an earlier attempt parked at
-- the same k must not wake a later duration wait, whose awaiting set is empty).
-- Returns 1 when this call woke the run (the caller publishes its resume), else 0.
-- #include timer_wake
local r = redis.call("HMGET", KEYS[1], "status", "wait_k", "woken", "id")
if r[1] ~= S.WAITING or r[2] ~= ARGV[2] then return 0 end
if redis.call("SREM", KEYS[2], ARGV[3]) == 0 then return 0 end
if redis.call("SCARD", KEYS[2]) > 0 or r[3] == "1" then return 0 end
redis.call("HSET", KEYS[1], "woken", "1")
add_timer(KEYS[3], tonumber(ARGV[1]) + tonumber(ARGV[4]), T.resume .. r[4])
return 1
