-- transition: move a run that is not executing from one status to another.
-- KEYS[1] run hash   KEYS[2] timers   KEYS[3] set to remove the run from ("" = none)
-- KEYS[4] the run's waiters set ("" = none): a final status with waiters adds "notify|<id>"
-- KEYS[5..] and the last ARGV: the event keys of events.lua
-- ARGV[1] now (ms)   ARGV[2] allowed current statuses, comma separated ("*" = any non-final)
-- ARGV[3] new status ("" = keep: only read the record)   ARGV[4] number R of timer
-- members to remove, then R members, then T (timers to add) and T pairs (member, due ms),
-- then field/value pairs to write.
-- Returns {"ok", record...} after the change, or {"no", current status} (nothing written).
-- Or the error reply STALE_KEYS of events.lua: the event keys were stale, nothing written.
-- #include events
-- #include timer_wake
local status = redis.call("HGET", KEYS[1], "status")
if not status then return {"no", ""} end
local stale = events_stale(KEYS[1])
if stale then return stale end
local allowed = false
if ARGV[2] == "*" then
  allowed = not FINAL[status]
else
  for s in string.gmatch(ARGV[2], "[^,]+") do
    if s == status then allowed = true end
  end
end
if not allowed then return {"no", status} end
local now = tonumber(ARGV[1])
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  redis.call("ZREM", KEYS[2], ARGV[i])
  i = i + 1
end
local nadd = tonumber(ARGV[i])
i = i + 1
for _ = 1, nadd do
  add_timer(KEYS[2], ARGV[i + 1], ARGV[i])
  i = i + 2
end
if ARGV[3] ~= "" then
  redis.call("HSET", KEYS[1], "status", ARGV[3], "updated", now)
  if FINAL[ARGV[3]] then
    redis.call("HSET", KEYS[1], "finished", now, "lease", "", "lease_exp", 0)
    redis.call("ZREM", KEYS[2], T.lease .. redis.call("HGET", KEYS[1], "id"))
    if KEYS[4] and KEYS[4] ~= "" and redis.call("EXISTS", KEYS[4]) == 1 then
      add_timer(KEYS[2], now + 5000, T.notify .. redis.call("HGET", KEYS[1], "id"))
    end
  end
  if ARGV[3] == S.QUEUED then redis.call("HSET", KEYS[1], "queued_at", now) end
end
if i <= EV.nargv then
  local fields = {}
  for j = i, EV.nargv do fields[#fields + 1] = ARGV[j] end
  redis.call("HSET", KEYS[1], unpack(fields))
end
if KEYS[3] ~= "" then redis.call("ZREM", KEYS[3], redis.call("HGET", KEYS[1], "id")) end
if ARGV[3] ~= "" or i <= EV.nargv then emit_event(KEYS[1], E.status) end
return {"ok", unpack(redis.call("HGETALL", KEYS[1]))}
