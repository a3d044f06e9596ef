-- stream_append: append chunks to one of a run's realtime streams (metadata.stream,
-- SEMANTICS §12.1), in order, once.
-- KEYS[1] run hash   KEYS[2] the stream "<run key>:stream:<key>"
-- KEYS[3..] and the last ARGV: the event keys of events.lua
-- ARGV[1] stream key   ARGV[2] writer "<run id>:<attempt>"   ARGV[3] the writer's sequence
-- number of the first chunk   ARGV[4..] chunks (JSON text)
-- The run's field "streams" lists its stream keys in creation order (realtimeStreams); a new
-- key is added there and announced with the event "n" (events.lua), so subscribers start
-- reading it. Field "st:<key>" holds "<writer>|<next sequence number>": a replay of the same
-- attempt after a durable wait sends the chunks it sent before again, with the same numbers,
-- and those are skipped; another writer (a retry, a child) appends after what is there.
-- The stream expires 28 days after its last chunk.
-- Returns {"ok", chunks appended} or {"missing", 0} (no run).
-- Or the error reply STALE_KEYS of events.lua: the event keys were stale, nothing written.
-- #include events
local rec = redis.call("HMGET", KEYS[1], "id", "streams", "st:" .. ARGV[1])
if not rec[1] then return {"missing", 0} end
local stale = events_stale(KEYS[1])
if stale then return stale end
local seq = tonumber(ARGV[3])
local first, nxt = 4, seq + EV.nargv - 3
if rec[3] then
  local writer, stored = string.match(rec[3], "^(.*)|(%d+)$")
  stored = tonumber(stored)
  if writer == ARGV[2] and stored then
    if stored > seq then first = first + (stored - seq) end
    if stored > nxt then nxt = stored end
  end
end
local added = 0
for j = first, EV.nargv do
  redis.call("XADD", KEYS[2], "*", "d", ARGV[j])
  added = added + 1
end
redis.call("HSET", KEYS[1], "st:" .. ARGV[1], ARGV[2] .. "|" .. nxt)
if added > 0 then
  redis.call("PEXPIRE", KEYS[2], 2419200000)
  redis.call("PUBLISH", KEYS[2], "d")  -- wakes subscribers reading the stream (events.lua)
end
local keys = {}
if rec[2] and rec[2] ~= "" then keys = cjson.decode(rec[2]) end
for _, k in ipairs(keys) do
  if k == ARGV[1] then return {"ok", added} end
end
keys[#keys + 1] = ARGV[1]
local parts = {}
for n, k in ipairs(keys) do parts[n] = cjson.encode(k) end
redis.call("HSET", KEYS[1], "streams", "[" .. table.concat(parts, ",") .. "]")
emit_event(KEYS[1], E.stream)
return {"ok", added}
