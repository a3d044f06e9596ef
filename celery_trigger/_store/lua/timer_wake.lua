-- timer_wake: add_timer(key, due, member[, flag]) ZADDs a member of the timers zset (flag:
-- "LT") and, when it became the earliest member and is due within WAKE_HORIZON_MS, publishes
-- on the channel named like the key. Timer services sleep until the earliest member, at most
-- timers.MAX_IDLE_S (2 s, below the horizon), and that message wakes them early
-- (``_engine/timers.py``). Not a script of its own: RedisStore puts this text in place of the
-- line "-- #include timer_wake" (before "-- #include slots", which uses it).
local WAKE_HORIZON_MS = 3000
local function add_timer(key, due, member, flag)
  if flag then
    redis.call("ZADD", key, flag, due, member)
  else
    redis.call("ZADD", key, due, member)
  end
  local head = redis.call("ZRANGE", key, 0, 0)
  if head[1] == member then
    local t = redis.call("TIME")
    if tonumber(due) < tonumber(t[1]) * 1000 + WAKE_HORIZON_MS then
      redis.call("PUBLISH", key, "")
    end
  end
end
