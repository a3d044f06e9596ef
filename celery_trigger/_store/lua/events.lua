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
-- batch streams keep ~10000 entries and expire 7 days after their last event. Their keys are
-- built here from the run's fields (one Redis server, like the broker fast path), not passed
-- in KEYS.
-- The key names come from _keys.py: RedisStore fills in NAME_* below (the parts of
-- Keys.events / tag_events / batch_events around the id) when it loads the script.
local EVENTS_HEAD, EVENTS_TAIL = NAME_EVENTS_HEAD, NAME_EVENTS_TAIL
local TAG_HEAD, TAG_TAIL = NAME_TAG_EVENTS_HEAD, NAME_TAG_EVENTS_TAIL
local BATCH_HEAD, BATCH_TAIL = NAME_BATCH_EVENTS_HEAD, NAME_BATCH_EVENTS_TAIL
local function emit_event(run_key, kind)
  local r = redis.call("HMGET", run_key, "id", "tags", "batch")
  if not r[1] then return end
  redis.call("HINCRBY", run_key, "ev", 1)
  redis.call("PUBLISH", EVENTS_HEAD .. r[1] .. EVENTS_TAIL, kind)
  local function index(key)
    redis.call("XADD", key, "MAXLEN", "~", 10000, "*", "r", r[1], "k", kind)
    redis.call("PEXPIRE", key, 604800000)
    redis.call("PUBLISH", key, kind)
  end
  if r[2] and r[2] ~= "" and r[2] ~= "[]" then
    for _, tag in ipairs(cjson.decode(r[2])) do index(TAG_HEAD .. tag .. TAG_TAIL) end
  end
  if r[3] and r[3] ~= "" then index(BATCH_HEAD .. r[3] .. BATCH_TAIL) end
end
