-- events: the realtime change feed (DESIGN §7), shared by every script that changes what a
-- run object shows (status, metadata, tags, output, streams). Not a script of its own:
-- RedisStore puts this text in place of the line "-- #include events".
-- Event keys, passed like every other key (Redis Cluster): the LAST 2 + n KEYS of a script
-- that includes this file are
--   the run's event channel (Keys.events), its batch's event stream (Keys.batch_events, ""
--   when the run has no batch), then the event stream of each of n tags (Keys.tag_events);
-- and the LAST ARGV is the JSON {"b": batch id or "", "t": [tag, ...]} those keys were built
-- for. Scripts read their own arguments only up to EV.nkeys / EV.nargv.
-- The caller may pass stale identities (it caches a run's tags and batch, and guesses "none"
-- for a run it has not seen): a script calls events_stale(run key) before it writes
-- anything, which answers the error reply "STALE_KEYS {"t": tags JSON, "b": batch}" when
-- the record has a batch other than EV.batch or a tag without a passed key. The store then
-- calls again with the record's values. A superset of tags is fine (tags_add passes the
-- tags it adds).
-- emit_event(run_key, kind), in the same atomic call as the change:
-- * increments the run's change counter (field "ev"): a reader holding two records of one
--   run keeps the one with the higher counter, so it never goes back;
-- * PUBLISHes kind on the run's event channel: that is what wakes the subscribers of the run
--   (the realtime hub listens on the channels it needs; Redis filters). The record is the
--   truth, so no history is kept per run;
-- * appends {r=run id, k=kind} to the event stream of each of the run's tags and of its
--   batch, and publishes on their channels: tag and batch subscriptions read which runs
--   changed from there, from their own position.
-- Kinds: E.* (_vocab.EventKind). Tag and batch streams keep ~10000 entries and expire 7 days
-- after their last event.
local EV = (function()
  local spec = cjson.decode(ARGV[#ARGV])
  local first = #KEYS - #spec.t - 1
  local ev = {channel = KEYS[first], batch = spec.b, batch_key = KEYS[first + 1], tags = {},
    nkeys = first - 1, nargv = #ARGV - 1}
  for i, tag in ipairs(spec.t) do ev.tags[tag] = KEYS[first + 1 + i] end
  return ev
end)()

local function events_stale(run_key)
  local r = redis.call("HMGET", run_key, "tags", "batch")
  local ok = (r[2] or "") == EV.batch
  if ok and r[1] and r[1] ~= "" and r[1] ~= "[]" then
    for _, tag in ipairs(cjson.decode(r[1])) do
      if not EV.tags[tag] then ok = false end
    end
  end
  if ok then return nil end
  return redis.error_reply("STALE_KEYS " .. cjson.encode({t = r[1] or "[]", b = r[2] or ""}))
end

local function emit_event(run_key, kind)
  local r = redis.call("HMGET", run_key, "id", "tags", "batch")
  if not r[1] then return end
  redis.call("HINCRBY", run_key, "ev", 1)
  redis.call("PUBLISH", EV.channel, kind)
  local function index(key)
    redis.call("XADD", key, "MAXLEN", "~", 10000, "*", "r", r[1], "k", kind)
    redis.call("PEXPIRE", key, 604800000)
    redis.call("PUBLISH", key, kind)
  end
  if r[2] and r[2] ~= "" and r[2] ~= "[]" then
    for _, tag in ipairs(cjson.decode(r[2])) do
      if EV.tags[tag] then index(EV.tags[tag]) end  -- events_stale made sure it is there
    end
  end
  if r[3] and r[3] ~= "" and EV.batch_key ~= "" then index(EV.batch_key) end
end
