-- events: the realtime change feed (DESIGN §7), shared by every script that changes what a
-- run object shows (status, metadata, tags, output, streams). Not a script of its own:
-- RedisStore puts this text in place of the line "-- #include events".
-- emit_event(run_key, kind), in the same atomic call as the change:
-- * increments the run's change counter (field "ev"): a reader holding two records of one
--   run keeps the one with the higher counter, so it never goes back;
-- * PUBLISHes kind on the channel "<run key>:events": that is what wakes the subscribers of
--   the run (the realtime hub listens on the channels it needs; Redis filters). The record
--   is the truth, so no history is kept per run;
-- * appends {r=run id, k=kind} to the streams "<prefix>:tagev:<tag>" (each of the run's
--   tags) and "<prefix>:batchev:<batch>", and publishes on their channels: tag and batch
--   subscriptions read which runs changed from there, from their own position.
-- Kinds: "c" created, "s" status, "m" metadata, "t" tags, "n" a new realtime stream. Tag and
-- batch streams keep ~10000 entries and expire 7 days after their last event. Their keys
-- are derived from the run key (one Redis server, like the broker fast path), not passed in
-- KEYS.
local function emit_event(run_key, kind)
  local r = redis.call("HMGET", run_key, "id", "tags", "batch")
  if not r[1] then return end
  redis.call("HINCRBY", run_key, "ev", 1)
  redis.call("PUBLISH", run_key .. ":events", kind)
  local prefix = string.sub(run_key, 1, #run_key - #r[1] - 5)  -- strip ":run:<id>"
  local function index(key)
    redis.call("XADD", key, "MAXLEN", "~", 10000, "*", "r", r[1], "k", kind)
    redis.call("PEXPIRE", key, 604800000)
    redis.call("PUBLISH", key, kind)
  end
  if r[2] and r[2] ~= "" and r[2] ~= "[]" then
    for _, tag in ipairs(cjson.decode(r[2])) do index(prefix .. ":tagev:" .. tag) end
  end
  if r[3] and r[3] ~= "" then index(prefix .. ":batchev:" .. r[3]) end
end
