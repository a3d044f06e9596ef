-- finish_attempt: record the end of an attempt held under a lease.
-- KEYS[1] run hash   KEYS[2] timers   KEYS[3] idempotency key ("" = none)
-- KEYS[4] the run's waiters set (runs parked on it)
-- KEYS[5..] and the last ARGV: the event keys of events.lua
-- ARGV[1] now (ms)   ARGV[2] lease token   ARGV[3] new status
-- ARGV[4] 1 when the key must be released (a failed owner), else 0
-- ARGV[5] number of timers T, then T pairs (member, due ms), then field/value pairs.
-- A final status with waiters adds the timer "notify|<run id>" (a safety net: the finishing
-- worker notifies them at once and removes it).
-- Returns 2 when the run became final and has waiters (the caller notifies them), 1 when it
-- was written, or 0 when the lease is no longer ours (cancelled, or taken over after expiry):
-- then nothing is written.
-- Or the error reply STALE_KEYS of events.lua: the event keys were stale, nothing written.
-- #include events
-- #include timer_wake
local r = redis.call("HMGET", KEYS[1], "status", "lease", "id")
if r[1] ~= S.EXECUTING or r[2] ~= ARGV[2] then return 0 end
local stale = events_stale(KEYS[1])
if stale then return stale end
local now, status = tonumber(ARGV[1]), ARGV[3]
redis.call("HSET", KEYS[1], "status", status, "lease", "", "lease_exp", 0, "updated", now)
redis.call("ZREM", KEYS[2], T.lease .. r[3])
local result = 1
if FINAL[status] then
  redis.call("HSET", KEYS[1], "finished", now)
  if redis.call("EXISTS", KEYS[4]) == 1 then
    add_timer(KEYS[2], now + 5000, T.notify .. r[3])
    result = 2
  end
end
if status == S.QUEUED then redis.call("HSET", KEYS[1], "queued_at", now) end
if KEYS[3] ~= "" and ARGV[4] == "1" and redis.call("GET", KEYS[3]) == r[3] then
  redis.call("DEL", KEYS[3])
end
local ntimers = tonumber(ARGV[5])
local i = 6
for _ = 1, ntimers do
  add_timer(KEYS[2], ARGV[i + 1], ARGV[i])
  i = i + 2
end
if i <= EV.nargv then
  local fields = {}
  for j = i, EV.nargv do fields[#fields + 1] = ARGV[j] end
  redis.call("HSET", KEYS[1], unpack(fields))
end
emit_event(KEYS[1], E.status)
return result
