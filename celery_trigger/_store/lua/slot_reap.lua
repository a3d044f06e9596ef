-- slot_reap: the reaper of concurrency slots whose lease lapsed (DESIGN §6).
-- KEYS[1] slots   KEYS[2] slots:sub   KEYS[3] slots:count   KEYS[4] timers
-- ARGV[1] now (ms)
-- A slot lapses when its holder's worker died (no heartbeat renews it) or a promoted run
-- never took up the slot handed to it. Each lapsed slot is dropped and its sub-queue gets
-- "pump|<sub>" due now, so its waiting runs are admitted even if nothing else happens in
-- that sub-queue; its run gets "promote|<run>" due now (published again if it can still
-- run: its message may have died with its worker). While any slot is held, T.reap .. "slots"
-- is re-armed one second after the earliest lease could lapse.
-- Returns the number of slots reaped.
-- #include timer_wake
-- #include slots
local now = tonumber(ARGV[1])
local K = {held=KEYS[1], subof=KEYS[2], count=KEYS[3], timers=KEYS[4]}
local reaped = 0
repeat
  local n = slot_reap(K, now, "")
  reaped = reaped + n
until n < 100
local first = redis.call("ZRANGE", KEYS[1], 0, 0, "WITHSCORES")
if #first > 0 then
  add_timer(KEYS[4], tonumber(first[2]) + 1000, T.reap .. "slots", "LT")
end
return reaped
