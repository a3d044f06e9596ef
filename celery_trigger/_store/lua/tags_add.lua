-- tags_add: add tags to a run (SEMANTICS §9, tags.add), all or none.
-- KEYS[1] run hash   KEYS[2..] the tag index sorted set of each ARGV tag, in the same order,
-- then the event keys of events.lua, for the run's tags and the added ones (last ARGV: their
-- identity JSON)
-- ARGV[1] the most tags a run may carry   ARGV[2..] tags (validated, distinct)
-- Tags the run already has are skipped. When the result would exceed ARGV[1], nothing is
-- written. New tags are indexed with the run's creation time as score (like create_run).
-- Returns {status, tags JSON}: status "ok", "limit" (nothing added) or "missing" (no run).
-- Or the error reply STALE_KEYS of events.lua: the event keys were stale, nothing written.
-- #include events
local rec = redis.call("HMGET", KEYS[1], "status", "tags", "created", "id")
if not rec[1] then return {"missing", "[]"} end
local stale = events_stale(KEYS[1])
if stale then return stale end
local current = {}
if rec[2] and rec[2] ~= "" and rec[2] ~= "[]" then current = cjson.decode(rec[2]) end
local have = {}
for _, tag in ipairs(current) do have[tag] = true end
local added = {}
for i = 2, EV.nargv do
  if not have[ARGV[i]] then
    have[ARGV[i]] = true
    added[#added + 1] = i
  end
end
local text = rec[2] or "[]"
if #current + #added > tonumber(ARGV[1]) then return {"limit", text} end
if #added == 0 then return {"ok", text} end
for _, i in ipairs(added) do
  current[#current + 1] = ARGV[i]
  redis.call("ZADD", KEYS[i], rec[3] or 0, rec[4])
end
local parts = {}
for i, tag in ipairs(current) do parts[i] = cjson.encode(tag) end
text = "[" .. table.concat(parts, ",") .. "]"
redis.call("HSET", KEYS[1], "tags", text)
emit_event(KEYS[1], E.tags)
return {"ok", text}
