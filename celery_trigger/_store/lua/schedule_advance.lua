-- schedule_advance: after an occurrence was handled, record it and arm the next one.
-- KEYS[1] schedule hash   KEYS[2] timers
-- ARGV[1] the occurrence handled (nominal ms; must still be the schedule's next_run)
-- ARGV[2] next nominal occurrence (ms)   ARGV[3] its wall-clock due time (ms)
-- ARGV[4] timer member ("sched|<id>")   ARGV[5] nominal ms of the occurrence if it was
-- triggered ("" = skipped: inactive; last_run keeps the last triggered one)   ARGV[6] now (ms)
-- Returns 1, or 0 when the schedule is gone or was re-timed meanwhile (nothing written).
-- #include timer_wake
if redis.call("HGET", KEYS[1], "next_run") ~= ARGV[1] then return 0 end
redis.call("HSET", KEYS[1], "next_run", ARGV[2], "updated", ARGV[6])
if ARGV[5] ~= "" then redis.call("HSET", KEYS[1], "last_run", ARGV[5]) end
add_timer(KEYS[2], ARGV[3], ARGV[4])
return 1
