-- slot_release: a run gives back its concurrency slot (or its place in line), and the
-- sub-queue admits its next waiting runs (DESIGN §6).
-- KEYS[1] run hash ("" = no run: only admit, e.g. after a resume or a reaped slot)
-- KEYS[2] timers   KEYS[3..10] slot keys (slots.lua): queue hash, sub-queue waiting set, the
-- queue's sub-queue set, slots, slots:sub, slots:count, slots:ready, slots:unclaimed
-- ARGV[1] now (ms)   ARGV[2] run id ("" = none)   ARGV[3] sub-queue id
-- ARGV[4] environment concurrency limit ("" = none)   ARGV[5] hand-over lease (ms)
-- ARGV[6] delay (ms) of the "promote|<run>" fallback timer of each promoted run
-- Returns the promoted run ids: each now holds a slot (leased for ARGV[5] ms) and the caller
-- publishes it; if the caller dies first, its "promote|<run>" timer does.
-- A run that is EXECUTING again (a resume or takeover claimed it since) keeps its slot:
-- the release of an attempt that has already ended changes nothing.
-- #include timer_wake
-- #include slots
local now = tonumber(ARGV[1])
local K = {queue=KEYS[3], waiting=KEYS[4], subs=KEYS[5], held=KEYS[6], subof=KEYS[7],
  count=KEYS[8], ready=KEYS[9], unclaimed=KEYS[10], timers=KEYS[2]}
local sub, env = ARGV[3], tonumber(ARGV[4])
if ARGV[2] ~= "" then
  if redis.call("HGET", KEYS[1], "status") == S.EXECUTING then return {} end
  slot_leave(K, ARGV[2], sub)
  if redis.call("EXISTS", KEYS[1]) == 1 then redis.call("HDEL", KEYS[1], "slot") end
end
slot_reap(K, now, sub)
local limit, paused = slot_limit(K, env)
return slot_pump(K, sub, limit, paused, env, now, now + tonumber(ARGV[5]), tonumber(ARGV[6]))
