-- events: the realtime change feed (DESIGN §7), shared by every script that changes what a
-- run object shows (status, metadata, tags, output, streams). Not a script of its own:
-- RedisStore puts this text in place of the line "-- #include events".
-- emit_event(run_key, kind) appends {k=kind} to the run's stream "<run key>:events" and
-- {r=run id, k=kind} to "<prefix>:tagev:<tag>" for each of the run's tags and to
-- "<prefix>:batchev:<batch>" for its batch, in the same atomic call as the change, so a
-- subscriber that reads the state after its last event id misses nothing. Kinds: "c"
-- created, "s" status, "m" metadata, "t" tags, "n" a new realtime stream. The run's field
-- "ev" counts its events: a reader holding two records of one run keeps the higher one.
-- Each append is also PUBLISHed on a channel named like the stream: that is what wakes
-- subscribers (the realtime hub subscribes to the channels it needs; Redis filters). The
-- streams keep the order for readers that need it (tag and batch subscriptions, resync).
-- Event streams are wake-up calls, not history (the run hash is the truth): run streams keep
-- ~64 entries, tag and batch streams ~10000, and every one expires 7 days after its last
-- event. The stream keys are derived from the run key (one Redis server, like the broker
-- fast path), not passed in KEYS.
local function emit_event(run_key, kind)
  local r = redis.call("HMGET", run_key, "id", "tags", "batch")
  if not r[1] then return end
  redis.call("HINCRBY", run_key, "ev", 1)  -- the run's change counter: readers never go back
  local prefix = string.sub(run_key, 1, #run_key - #r[1] - 5)  -- strip ":run:<id>"
  local ttl = 604800000
  local ev = run_key .. ":events"
  redis.call("XADD", ev, "MAXLEN", "~", 64, "*", "k", kind)
  redis.call("PEXPIRE", ev, ttl)
  redis.call("PUBLISH", ev, kind)
  if r[2] and r[2] ~= "" and r[2] ~= "[]" then
    for _, tag in ipairs(cjson.decode(r[2])) do
      local key = prefix .. ":tagev:" .. tag
      redis.call("XADD", key, "MAXLEN", "~", 10000, "*", "r", r[1], "k", kind)
      redis.call("PEXPIRE", key, ttl)
      redis.call("PUBLISH", key, kind)
    end
  end
  if r[3] and r[3] ~= "" then
    local key = prefix .. ":batchev:" .. r[3]
    redis.call("XADD", key, "MAXLEN", "~", 10000, "*", "r", r[1], "k", kind)
    redis.call("PEXPIRE", key, ttl)
    redis.call("PUBLISH", key, kind)
  end
end
