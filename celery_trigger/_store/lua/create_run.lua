-- create_run: write a new run record atomically, honouring its idempotency key.
-- KEYS[1] run hash          KEYS[2] runs:by_created    KEYS[3] timers
-- KEYS[4] idempotency key ("" = none)                 KEYS[5] parent's children list ("" = none)
-- KEYS[6] pending-version set ("" = none)             KEYS[7] broker queue list ("" = none)
-- KEYS[8..] tag sorted sets, then the event keys of events.lua (channel, batch stream, tag
-- streams); the last ARGV is the events.lua identity JSON. The record is new, so the caller
-- passes exactly its tags and batch (no stale check).
-- ARGV[1] run id   ARGV[2] now (ms)   ARGV[3] idempotency ttl (ms)
-- ARGV[4] run id the key may be taken from ("" = none: an existing owner means a cache hit)
-- ARGV[5] the Celery message to LPUSH onto KEYS[7] when the run is created ("" = none), so
-- the record and its message appear together or not at all
-- ARGV[6] number of timers T, then T pairs (member, due ms), then the record's fields as one
-- JSON object of strings (one argument instead of ~50 keeps the call cheap to encode).
-- Returns {run id, cached (0|1)}: the new run, or the run that already owns the key.
-- #include events
-- #include timer_wake
local run_id, now = ARGV[1], tonumber(ARGV[2])
if KEYS[4] ~= "" then
  local owner = redis.call("GET", KEYS[4])
  if owner and owner ~= ARGV[4] then
    return {owner, 1}
  end
  redis.call("SET", KEYS[4], run_id, "PX", ARGV[3])
end
if redis.call("EXISTS", KEYS[1]) == 1 then
  return {run_id, 1}
end
local ntimers = tonumber(ARGV[6])
local i = 7
for _ = 1, ntimers do
  add_timer(KEYS[3], ARGV[i + 1], ARGV[i])
  i = i + 2
end
local fields = {}
local record = cjson.decode(ARGV[i])
for name, value in pairs(record) do
  fields[#fields + 1] = name
  fields[#fields + 1] = value
end
-- the listings order by the record's own creation time (ARGV[2] when it has none), so a
-- listing and the "created" field can never disagree
local created = tonumber(record.created or "") or now
redis.call("HSET", KEYS[1], unpack(fields))
redis.call("ZADD", KEYS[2], created, run_id)
if KEYS[5] ~= "" then redis.call("RPUSH", KEYS[5], run_id) end
if KEYS[6] ~= "" then redis.call("ZADD", KEYS[6], now, run_id) end
for k = 8, EV.nkeys do redis.call("ZADD", KEYS[k], created, run_id) end
if KEYS[7] ~= "" and ARGV[5] ~= "" then redis.call("LPUSH", KEYS[7], ARGV[5]) end
emit_event(KEYS[1], E.created)
return {run_id, 0}
