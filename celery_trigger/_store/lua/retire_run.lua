-- retire_run: delete a final run whose retention has passed, with its index entries.
-- KEYS[1] run hash   KEYS[2] children   KEYS[3] journal   KEYS[4] waiters   KEYS[5] awaiting
-- KEYS[6] runs:by_created   KEYS[7] the run's batch hash ("" = none)
-- KEYS[8 .. 7+N] the tag indexes of the run's tags, then its realtime streams, then its
-- own log (stream and its meta hash)
-- ARGV[1] run id   ARGV[2] retention (ms; the batch hash expires that long after)
-- ARGV[3] the record's "tags" and ARGV[4] its "streams" as the caller read them
-- Returns 1 when the run was deleted, 0 when it is missing or not final (a live run is never
-- touched), -1 when its tags or streams changed since the caller read them (read again).
local r = redis.call("HMGET", KEYS[1], "status", "tags", "streams")
if not r[1] or not FINAL[r[1]] then return 0 end
if (r[2] or "") ~= ARGV[3] or (r[3] or "") ~= ARGV[4] then return -1 end
redis.call("DEL", KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
redis.call("ZREM", KEYS[6], ARGV[1])
if KEYS[7] ~= "" and redis.call("EXISTS", KEYS[7]) == 1 then
  redis.call("PEXPIRE", KEYS[7], ARGV[2])
end
for i = 8, #KEYS do
  if redis.call("TYPE", KEYS[i]).ok == "zset" then
    redis.call("ZREM", KEYS[i], ARGV[1])
  else
    redis.call("DEL", KEYS[i])
  end
end
return 1
