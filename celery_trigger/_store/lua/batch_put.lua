-- batch_put: write a batch record, its run ids resolved as the creates before it resolved them.
-- Runs last in the MULTI/EXEC transaction that creates the batch's runs (create_runs with a
-- batch): the runs and their batch record are applied together or not at all.
-- KEYS[1] the batch hash   KEYS[1 + i] run i's idempotency key ("" = none)
-- ARGV[1] n   ARGV[1 + i] run i's own id   ARGV[n + 2] the other fields (JSON object)
-- An item whose key is held names the key's owner (a cached run), else its own id.
local n = tonumber(ARGV[1])
local ids = {}
for i = 1, n do
  local owner = false
  if KEYS[1 + i] ~= "" then owner = redis.call("GET", KEYS[1 + i]) end
  ids[i] = owner or ARGV[1 + i]
end
local fields = cjson.decode(ARGV[n + 2])
local args = {"runs", cjson.encode(ids)}
for field, value in pairs(fields) do
  args[#args + 1] = field
  args[#args + 1] = value
end
redis.call("HSET", KEYS[1], unpack(args))
return n
