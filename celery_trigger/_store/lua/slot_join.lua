-- slot_join: a run just created in a queue with a limit takes its place in line (DESIGN §6).
-- KEYS[1] run hash   KEYS[2] timers   KEYS[3..10] slot keys (slots.lua): queue hash,
-- sub-queue waiting set, the queue's sub-queue set, slots, slots:sub, slots:count,
-- slots:ready, slots:unclaimed
-- ARGV[1] sub-queue id   ARGV[2] environment concurrency limit ("" = none)
-- Runs the creating call pipelines right after create_run.lua: the run's place among the
-- runs waiting for a slot is then decided by its order (queued time - priority), not by the
-- order in which workers happen to receive the deliveries. Nothing happens for a run that
-- is not QUEUED (delayed, pending, or already claimed), is already in line or holds a slot,
-- or whose queue has no limit (and no environment limit) and is not paused.
-- Returns 1 when the run joined, else 0.
-- #include timer_wake
-- #include slots
local r = redis.call("HMGET", KEYS[1], "status", "queued_at", "priority", "id", "seq")
if r[1] ~= S.QUEUED then return 0 end
local K = {queue=KEYS[3], waiting=KEYS[4], subs=KEYS[5], held=KEYS[6], subof=KEYS[7],
  count=KEYS[8], ready=KEYS[9], unclaimed=KEYS[10], timers=KEYS[2]}
local limit, paused = slot_limit(K, tonumber(ARGV[2]))
if limit == nil and not paused then return 0 end
local run = r[4]
if redis.call("ZSCORE", K.held, run) or redis.call("ZSCORE", K.ready, run)
    or redis.call("ZSCORE", K.waiting, run) then
  return 0
end
local score = (tonumber(r[2] or "") or 0) - (tonumber(r[3] or "0") or 0)
  + (tonumber(r[5] or "0") or 0) / 1000  -- a batch's runs, in item order
redis.call("ZADD", K.waiting, score, run)
redis.call("SADD", K.subs, ARGV[1])
redis.call("HSET", KEYS[1], "slot", ARGV[1])
redis.call("SADD", K.unclaimed, run)  -- its own message is on its way (no publish needed)
return 1
