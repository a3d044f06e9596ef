-- timers_add: add timer members, waking the timer services when one is due soon.
-- KEYS[1] timers   ARGV: pairs (member, due ms)
-- #include timer_wake
for i = 1, #ARGV, 2 do add_timer(KEYS[1], ARGV[i + 1], ARGV[i]) end
return 0
