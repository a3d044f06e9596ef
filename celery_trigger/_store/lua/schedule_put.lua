-- schedule_put: create or change a schedule, and arm its occurrence timer.
-- KEYS[1] schedule hash   KEYS[2] schedules index (sorted set by creation ms)   KEYS[3] timers
-- KEYS[4] timers:claimed
-- ARGV[1] schedule id   ARGV[2] now (ms)
-- ARGV[3] mode: "upsert" (create, or change an existing one), "update" (change; must exist)
-- ARGV[4] type the existing schedule must have ("" = any)
-- ARGV[5] timer member ("sched|<id>")   ARGV[6] next nominal occurrence (ms, "" = none)
-- ARGV[7] wall-clock due time of that occurrence (ms)
-- ARGV[8] number C of field/value pairs written only when the schedule is created, then C
-- pairs, then field/value pairs always written (an empty value deletes the field).
-- The next occurrence (next_run + timer) is written when the schedule is new, when its cron
-- or timezone changed, or when its timer is in neither timer set (lost, e.g. dropped by a
-- worker without the "sched" handler): re-syncing an unchanged schedule never moves a
-- pending or claimed fire.
-- Returns {"created"|"updated", record...}, {"missing"} or {"type", existing type}.
-- #include timer_wake
local exists = redis.call("EXISTS", KEYS[1]) == 1
if not exists and ARGV[3] ~= "upsert" then return {"missing"} end
if exists and ARGV[4] ~= "" then
  local kind = redis.call("HGET", KEYS[1], "type")
  if kind ~= ARGV[4] then return {"type", kind or ""} end
end
local i = 9
local ncreate = tonumber(ARGV[8])
if not exists then
  for _ = 1, ncreate do
    redis.call("HSET", KEYS[1], ARGV[i], ARGV[i + 1])
    i = i + 2
  end
  redis.call("HSET", KEYS[1], "created", ARGV[2])
  redis.call("ZADD", KEYS[2], ARGV[2], ARGV[1])
else
  i = i + 2 * ncreate
end
local reschedule = not exists or redis.call("HEXISTS", KEYS[1], "next_run") == 0 or
  (not redis.call("ZSCORE", KEYS[3], ARGV[5]) and not redis.call("ZSCORE", KEYS[4], ARGV[5]))
while i <= #ARGV do
  local field, value = ARGV[i], ARGV[i + 1]
  if (field == "cron" or field == "timezone") and
      redis.call("HGET", KEYS[1], field) ~= value then
    reschedule = true
  end
  if value == "" then
    redis.call("HDEL", KEYS[1], field)
  else
    redis.call("HSET", KEYS[1], field, value)
  end
  i = i + 2
end
redis.call("HSET", KEYS[1], "updated", ARGV[2])
if reschedule and ARGV[6] ~= "" then
  redis.call("HSET", KEYS[1], "next_run", ARGV[6])
  add_timer(KEYS[3], ARGV[7], ARGV[5])
end
local reply = {exists and "updated" or "created"}
local record = redis.call("HGETALL", KEYS[1])
for j = 1, #record do reply[#reply + 1] = record[j] end
return reply
