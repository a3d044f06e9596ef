-- park: end an attempt at a durable wait, unless what it waits for is already there.
-- KEYS[1] run hash   KEYS[2] journal   KEYS[3] timers   KEYS[4] the run's awaiting set
-- KEYS[5..] pairs (status hash, waiters set) of every awaited member, then the event keys of
-- events.lua (and its identity JSON as the last ARGV)
-- ARGV[1] now (ms)   ARGV[2] lease token   ARGV[3] journal position k   ARGV[4] entry (JSON)
-- ARGV[5] wake-up time (ms) for a duration wait, "" for none   ARGV[6] waiter tag "<run>|<k>"
-- ARGV[7] number F of field/value pairs, then the F pairs (usage totals), then the awaited
-- members (child run ids, or "token:<id>"), one per KEYS pair.
-- The journal entry is appended when the journal has exactly k entries (first time here).
-- A member is resolved when its status is final (runs) or not WAITING (tokens). Unresolved
-- members go into the awaiting set and the run into each member's waiters set.
-- Returns "lost" (lease not ours), "ready" (nothing to wait for: continue) or "parked"
-- (status WAITING, lease released, wake-up registered).
-- Or the error reply STALE_KEYS of events.lua: the event keys were stale, nothing written.
-- #include events
-- #include timer_wake
local r = redis.call("HMGET", KEYS[1], "status", "lease")
if r[1] ~= S.EXECUTING or r[2] ~= ARGV[2] then return "lost" end
local stale = events_stale(KEYS[1])
if stale then return stale end
local now, k = tonumber(ARGV[1]), tonumber(ARGV[3])
if redis.call("LLEN", KEYS[2]) == k then redis.call("RPUSH", KEYS[2], ARGV[4]) end
redis.call("DEL", KEYS[4])
local nfields = tonumber(ARGV[7])
local first_member = 8 + 2 * nfields
local pending = 0
local i = 5
local m = first_member
while i < EV.nkeys do
  local status = redis.call("HGET", KEYS[i], "status")
  local member = ARGV[m]
  local resolved
  if string.sub(member, 1, 6) == "token:" then
    resolved = status and status ~= W.WAITING
  else
    resolved = status and FINAL[status]
  end
  if not resolved then
    pending = pending + 1
    redis.call("SADD", KEYS[4], member)
    redis.call("SADD", KEYS[i + 1], ARGV[6])
  end
  i = i + 2
  m = m + 1
end
local due = tonumber(ARGV[5])
if pending == 0 and (due == nil or due <= now) then return "ready" end
redis.call("HSET", KEYS[1], "status", S.WAITING, "lease", "", "lease_exp", 0, "woken", "0",
  "wait_k", k, "updated", now)
redis.call("ZREM", KEYS[3], T.lease .. redis.call("HGET", KEYS[1], "id"))
if nfields > 0 then
  local fields = {}
  for j = 8, 7 + 2 * nfields do fields[#fields + 1] = ARGV[j] end
  redis.call("HSET", KEYS[1], unpack(fields))
end
if due ~= nil and due > now then
  add_timer(KEYS[3], due, T.resume .. redis.call("HGET", KEYS[1], "id"))
end
emit_event(KEYS[1], E.status)
return "parked"
