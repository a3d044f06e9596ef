-- slots: the concurrency-slot functions (DESIGN §6) shared by claim_attempt.lua,
-- slot_release.lua and slot_reap.lua. Not a script of its own: RedisStore puts this text in
-- place of the line "-- #include slots" of a script, so each script stays one atomic call.
-- A table K names the keys, every one taken from the including script's KEYS:
--   K.queue   queue:<name> hash: concurrency_limit ("" = none), paused ("1")
--   K.waiting q:<sub>:waiting zset: runs the sub-queue cannot admit yet -> order
--   K.subs    qsubs:<queue> set: the queue's sub-queues that have waiting runs
--   K.held    slots zset: every run holding a slot -> slot lease expiry (ms)
--   K.subof   slots:sub hash: run -> its sub-queue, for runs held or ready
--   K.count   slots:count hash: sub-queue -> its runs held + ready
--   K.ready   slots:ready zset: runs their sub-queue admitted that wait for an environment
--             slot -> order
--   K.unclaimed slots:unclaimed set: runs in line since their creation (slot_join) whose
--             own message no worker has claimed yet: a promotion need not publish them
--   K.timers  timers zset
-- Invariants: a run is in at most one of waiting, ready and held; count[sub] is the number
-- of the sub-queue's runs in ready + held; a sub-queue admits its waiting runs, lowest order
-- first, while count < its limit and it is not paused; ready runs get a slot, lowest order
-- first (across every sub-queue), while ZCARD(held) < the environment limit. A slot whose
-- lease lapsed counts for nothing: it is reaped before any decision. Order is
-- queued time - priority (ms), so a resumed run keeps its original place.

-- The sub-queue's limit (nil = none) clamped to the environment's, and whether it is paused.
local function slot_limit(K, env)
  local q = redis.call("HMGET", K.queue, "concurrency_limit", "paused")
  local limit = tonumber(q[1] or "")
  if env and (limit == nil or limit > env) then limit = env end
  return limit, q[2] == "1"
end

local function slot_uncount(K, sub)
  if redis.call("HINCRBY", K.count, sub, -1) <= 0 then redis.call("HDEL", K.count, sub) end
end

-- Drop held slots whose lease lapsed (a dead worker's, or a hand-over never taken up). A
-- sub-queue other than `sub` that lost one gets "pump|<sub>" due now: the timer service
-- admits its waiting runs. The run gets "promote|<run>" due now: it is published again (its
-- message may have died with a worker before the claim) and queues up for a slot anew.
local function slot_reap(K, now, sub)
  local dead = redis.call("ZRANGEBYSCORE", K.held, "-inf", now, "LIMIT", 0, 100)
  for _, run in ipairs(dead) do
    local s = redis.call("HGET", K.subof, run)
    redis.call("ZREM", K.held, run)
    redis.call("HDEL", K.subof, run)
    add_timer(K.timers, now, T.promote .. run)
    if s then
      slot_uncount(K, s)
      if s ~= sub then add_timer(K.timers, now, T.pump .. s) end
    end
  end
  return #dead
end

-- The run leaves every slot structure of `sub` (completion, park, cancel, expiry).
local function slot_leave(K, run, sub)
  local s = redis.call("HGET", K.subof, run)
  if s then
    redis.call("HDEL", K.subof, run)
    redis.call("ZREM", K.held, run)
    redis.call("ZREM", K.ready, run)
    slot_uncount(K, s)
  end
  if redis.call("ZREM", K.waiting, run) == 1 and redis.call("EXISTS", K.waiting) == 0 then
    redis.call("SREM", K.subs, sub)
  end
  redis.call("SREM", K.unclaimed, run)
end

-- Admit waiting runs of `sub` while it has room, then give environment slots to ready runs.
-- Each promoted run holds its slot until `exp` and gets "promote|<run>" at now + delay (the
-- timer service publishes it unless the caller does first). Returns the promoted run ids,
-- except unclaimed ones (their own message is on its way: their timer waits until `exp`).
local function slot_pump(K, sub, limit, paused, env, now, exp, delay)
  if not paused then
    local n = tonumber(redis.call("HGET", K.count, sub) or "0")
    while limit == nil or n < limit do
      local head = redis.call("ZRANGE", K.waiting, 0, 0, "WITHSCORES")
      if #head == 0 then break end
      redis.call("ZREM", K.waiting, head[1])
      redis.call("ZADD", K.ready, head[2], head[1])
      redis.call("HSET", K.subof, head[1], sub)
      n = redis.call("HINCRBY", K.count, sub, 1)
    end
    if redis.call("EXISTS", K.waiting) == 0 then redis.call("SREM", K.subs, sub) end
  end
  local promoted = {}
  while env == nil or redis.call("ZCARD", K.held) < env do
    local head = redis.call("ZRANGE", K.ready, 0, 0)
    if #head == 0 then break end
    redis.call("ZREM", K.ready, head[1])
    redis.call("ZADD", K.held, exp, head[1])
    if K.unclaimed and redis.call("SISMEMBER", K.unclaimed, head[1]) == 1 then
      -- its own message is on its way and takes up the slot; publish only if it never does
      add_timer(K.timers, exp, T.promote .. head[1])
    else
      add_timer(K.timers, now + delay, T.promote .. head[1])
      promoted[#promoted + 1] = head[1]
    end
  end
  -- the reaper runs one second after the earliest slot lease could lapse
  if #promoted > 0 then add_timer(K.timers, exp + 1000, T.reap .. "slots", "LT") end
  return promoted
end

-- Take a slot for `run` (order `score`) in `sub`: true when the run holds one now, false when
-- it waits (an earlier place in waiting or ready is kept). Runs promoted on the way (the
-- sub-queue had room while older runs waited) get "promote|<run>" due now.
local function slot_acquire(K, run, sub, score, limit, paused, env, now, exp)
  slot_reap(K, now, sub)
  if redis.call("ZSCORE", K.held, run) then
    redis.call("ZADD", K.held, exp, run)
    redis.call("ZREM", K.timers, T.promote .. run)
    return true
  end
  if not redis.call("ZSCORE", K.ready, run) and not redis.call("ZSCORE", K.waiting, run) then
    redis.call("ZADD", K.waiting, score, run)
    redis.call("SADD", K.subs, sub)
  end
  for _, r in ipairs(slot_pump(K, sub, limit, paused, env, now, exp, 0)) do
    if r == run then
      redis.call("ZREM", K.timers, T.promote .. run)
      return true
    end
  end
  return false
end
