-- schedule_delete: remove a schedule, its index entry and its pending occurrence timer.
-- KEYS[1] schedule hash   KEYS[2] schedules index   KEYS[3] timers
-- ARGV[1] schedule id   ARGV[2] type it must have ("" = any)   ARGV[3] timer member
-- Returns "ok", "missing" or "type" (nothing deleted). A fire already claimed by a worker
-- finds no schedule and does nothing.
if redis.call("EXISTS", KEYS[1]) == 0 then return "missing" end
if ARGV[2] ~= "" and redis.call("HGET", KEYS[1], "type") ~= ARGV[2] then return "type" end
redis.call("DEL", KEYS[1])
redis.call("ZREM", KEYS[2], ARGV[1])
redis.call("ZREM", KEYS[3], ARGV[3])
return "ok"
