-- claim_attempt: take the run for one attempt under a lease, or say why not.
-- KEYS[1] run hash   KEYS[2] timers   KEYS[3] the run's journal
-- ARGV[1] now (ms)   ARGV[2] lease token   ARGV[3] lease length (ms)
-- ARGV[4] mode: "new" (a delivered message) | "warm" (in-worker retry under the same lease)
-- KEYS[4..11] the run's slot keys (slots.lua; "" when ARGV[5] is ""): queue hash, sub-queue
-- waiting set, the queue's sub-queue set, slots, slots:sub, slots:count, slots:ready,
-- slots:unclaimed
-- KEYS[12..] and the last ARGV: the event keys of events.lua
-- ARGV[5] the queue those keys belong to ("" = none)   ARGV[6] concurrency key ("" = none)
-- ARGV[7] the sub-queue id   ARGV[8] environment concurrency limit ("" = none)
-- ARGV[9..] timer members to drop once the run is taken (publish watchdog, TTL expiry)
-- Returns {"missing"} | {"drop", reason} | {"ok", field, value, ...} (the whole record) |
-- {"slot", queue, ckey}: the run is in another (sub-)queue than ARGV[5..6] name; nothing was
-- written, call again with that queue's keys.
-- Concurrency (DESIGN §6): a new attempt or a resume takes a slot of its (sub-)queue in the
-- same script. Over the limit (or paused) it waits in the sub-queue's waiting set and the
-- delivery is dropped ({"drop", "queued"}, status unchanged); a promotion publishes it
-- again. A queue without a limit, with no environment limit, costs no slot work at all.
-- A WAITING run is taken only once it was woken (woken = 1): it resumes the same attempt and
-- keeps its journal (field resumed = 1). Any other claim starts a new attempt with an empty
-- journal (the journal belongs to the attempt, DESIGN §4).
-- Taking the run arms the timer "lease|<id>" at lease expiry + 1 s: if the lease lapses (the
-- worker died), the timer service republishes the run and the next claim takes it over as a
-- new attempt (field takeover = 1; a warm retry under its own live lease is no takeover).
-- Invariant: at most one live lease per run; a duplicate delivery is dropped, never run twice.
-- #include timer_wake
-- #include slots
-- Or the error reply STALE_KEYS of events.lua: the event keys were stale, nothing written.
-- #include events
if redis.call("EXISTS", KEYS[1]) == 0 then return {"missing"} end
local stale = events_stale(KEYS[1])
if stale then return stale end
local now = tonumber(ARGV[1])
local r = redis.call("HMGET", KEYS[1], "status", "lease", "lease_exp", "ttl", "queued_at",
  "attempt", "started", "woken", "queue", "ckey", "priority", "id", "slot", "seq")
local status, lease, lease_exp = r[1], r[2], tonumber(r[3] or "0") or 0
if FINAL[status] then return {"drop", status} end
local mode = ARGV[4]
-- The run's slot: nil when it may run now, else the reply to return. Priority shifts the
-- order of a first attempt and of a resume, not of a retry (SEMANTICS §6.2).
local function admit(resuming)
  if (r[9] or "") ~= ARGV[5] or (r[10] or "") ~= ARGV[6] then
    return {"slot", r[9] or "", r[10] or ""}
  end
  if ARGV[5] == "" then return nil end
  local K = {queue=KEYS[4], waiting=KEYS[5], subs=KEYS[6], held=KEYS[7], subof=KEYS[8],
    count=KEYS[9], ready=KEYS[10], unclaimed=KEYS[11], timers=KEYS[2]}
  local env = tonumber(ARGV[8])
  local limit, paused = slot_limit(K, env)
  -- no limit: no slot work, unless the run is already in line (it joined before a change)
  if limit == nil and not paused and (r[13] or "") == "" then return nil end
  local prio = 0
  if resuming or tonumber(r[6] or "0") == 0 then prio = tonumber(r[11] or "0") or 0 end
  -- seq: the run's index in its batch (created in one ms), as a fraction of a ms
  local score = (tonumber(r[5] or "") or now) - prio + (tonumber(r[14] or "0") or 0) / 1000
  redis.call("HSET", KEYS[1], "slot", ARGV[7])
  redis.call("SREM", K.unclaimed, r[12])  -- this delivery is the run's message (slot_join)
  if slot_acquire(K, r[12], ARGV[7], score, limit, paused, env, now,
      now + tonumber(ARGV[3])) then
    return nil
  end
  return {"drop", "queued"}
end
if mode == "warm" then
  if status ~= S.EXECUTING or lease ~= ARGV[2] then return {"drop", "lease lost"} end
elseif status == S.EXECUTING then
  if lease_exp > now then return {"drop", "executing"} end
elseif status == S.WAITING then
  if r[8] ~= "1" then return {"drop", "waiting"} end
  local wait = admit(true)
  if wait then return wait end
  redis.call("HSET", KEYS[1], "status", S.EXECUTING, "lease", ARGV[2],
    "lease_exp", now + tonumber(ARGV[3]), "woken", "0", "resumed", "1", "updated", now,
    "takeover", "0")
  for k = 9, EV.nargv do redis.call("ZREM", KEYS[2], ARGV[k]) end
  add_timer(KEYS[2], now + tonumber(ARGV[3]) + 1000,
    T.lease .. redis.call("HGET", KEYS[1], "id"))
  emit_event(KEYS[1], E.status)
  return {"ok", unpack(redis.call("HGETALL", KEYS[1]))}
elseif status ~= S.QUEUED and status ~= S.DEQUEUED then
  return {"drop", status}
end
if status == S.QUEUED and r[4] and r[4] ~= "" and r[7] == false then
  local ttl_ms = tonumber(r[4]) * 1000
  if now >= tonumber(r[5] or now) + ttl_ms then return {"drop", "ttl"} end
end
if mode ~= "warm" then
  local wait = admit(false)
  if wait then return wait end
end
local attempt = tonumber(r[6] or "0") + 1
redis.call("HSET", KEYS[1], "status", S.EXECUTING, "lease", ARGV[2],
  "lease_exp", now + tonumber(ARGV[3]), "attempt", attempt, "attempt_started", now,
  "updated", now, "resumed", "0", "attempt_ms", 0,
  "takeover", (status == S.EXECUTING and mode ~= "warm") and "1" or "0")
redis.call("DEL", KEYS[3])
add_timer(KEYS[2], now + tonumber(ARGV[3]) + 1000,
  T.lease .. redis.call("HGET", KEYS[1], "id"))
if r[7] == false then redis.call("HSET", KEYS[1], "started", now) end
for k = 9, EV.nargv do redis.call("ZREM", KEYS[2], ARGV[k]) end
emit_event(KEYS[1], E.status)
return {"ok", unpack(redis.call("HGETALL", KEYS[1]))}
