-- metadata_apply: apply metadata operations to a run's stored document (SEMANTICS §8).
-- KEYS[1] run hash (field "meta" holds the document as JSON)
-- KEYS[2..] and ARGV[6]: the event keys of events.lua and their identity JSON
-- ARGV[1] now (ms)   ARGV[2] size limit of the encoded document (bytes)
-- ARGV[3] updatable window after the run finished (ms; "" = no check)
-- ARGV[4] operations: JSON list of {type, key?, value?} (types as _engine/metadata_ops.py)
-- ARGV[5] "1" to reply with the stored document
-- Returns {status, document}: status "ok" (written, or nothing applied), "missing" (no run),
-- "closed" (finished longer ago than the window), "too_large" (the result would exceed the
-- limit: nothing written), "invalid" (unreadable input or a non-finite number). The
-- document is the stored one after the call ("" unless ARGV[5] is "1").
-- cjson decodes; encoding is done here because Redis' cjson (7.0) prints numbers with 14
-- digits and cannot tell an empty array from an empty object. Arrays carry the ARR
-- metatable (or integer keys), objects have string keys; output keys are sorted.
-- Or the error reply STALE_KEYS of events.lua: the event keys were stale, nothing written.
-- #include events
local rec = redis.call("HMGET", KEYS[1], "status", "finished", "meta")
if not rec[1] then return {"missing", ""} end
local stale = events_stale(KEYS[1])
if stale then return stale end
local reply_doc = ARGV[5] == "1"
local function reply(status, text) return {status, reply_doc and (text or "") or ""} end
local now = tonumber(ARGV[1])
if ARGV[3] ~= "" and FINAL[rec[1]] and rec[2] and tonumber(rec[2]) + tonumber(ARGV[3]) < now then
  return reply("closed", rec[3])
end

local ARR = {}
local EMPTY = "\0celery-trigger:[]\0"

local function decode(text)
  -- `[]` outside strings becomes a placeholder string, turned back into a marked array.
  if not string.find(text, "[]", 1, true) then return cjson.decode(text), false end
  local out, start, pos = {}, 1, 1
  while true do
    local i = string.find(text, '[%["]', pos)
    if not i then break end
    if string.sub(text, i, i) == '"' then
      local j = i + 1
      while true do
        local q = string.find(text, '["\\]', j)
        if string.sub(text, q, q) == "\\" then j = q + 2 else pos = q + 1 break end
      end
    else
      if string.sub(text, i + 1, i + 1) == "]" then
        out[#out + 1] = string.sub(text, start, i - 1)
        out[#out + 1] = '"\\u0000celery-trigger:[]\\u0000"'
        start = i + 2
      end
      pos = i + 1
    end
  end
  out[#out + 1] = string.sub(text, start)
  return cjson.decode(table.concat(out)), true
end

local function restore(t)
  for k, v in pairs(t) do
    if v == EMPTY then t[k] = setmetatable({}, ARR)
    elseif type(v) == "table" then restore(v) end
  end
end

local function load(text)
  local ok, value, marked = pcall(decode, text)
  if not ok then return nil end
  if marked and type(value) == "table" then restore(value) end
  if value == EMPTY then value = setmetatable({}, ARR) end
  return value
end

local function is_array(t)
  return getmetatable(t) == ARR or type((next(t))) == "number"
end

local ESC = {['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n',
  ['\r'] = '\\r', ['\t'] = '\\t'}
local function quote(s)
  return '"' .. (string.gsub(s, '[%z\1-\31"\\]', function(c)
    return ESC[c] or string.format("\\u%04x", string.byte(c))
  end)) .. '"'
end

local function number(v)
  if v ~= v or v == math.huge or v == -math.huge then error("non-finite number") end
  if v == math.floor(v) and math.abs(v) < 2 ^ 53 then return string.format("%d", v) end
  for _, p in ipairs({"%.15g", "%.16g"}) do
    local s = string.format(p, v)
    if tonumber(s) == v then return s end
  end
  return string.format("%.17g", v)
end

local function encode(v, out)
  local t = type(v)
  if t == "table" then
    if is_array(v) then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out)
      end
      out[#out + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = quote(k)
        out[#out + 1] = ":"
        encode(v[k], out)
      end
      out[#out + 1] = "}"
    end
  elseif t == "string" then out[#out + 1] = quote(v)
  elseif t == "number" then out[#out + 1] = number(v)
  elseif t == "boolean" then out[#out + 1] = v and "true" or "false"
  else out[#out + 1] = "null" end
end

local function equal(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  if is_array(a) ~= is_array(b) then return false end
  for k, v in pairs(a) do
    if b[k] == nil or not equal(v, b[k]) then return false end
  end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function segments(key)
  if string.sub(key, 1, 2) ~= "$." then return nil end
  local segs = {}
  for s in string.gmatch(string.sub(key, 3), "[^.]+") do segs[#segs + 1] = s end
  return segs
end

local function index(arr, seg)
  if not string.find(seg, "^%d+$") then return nil end
  local i = tonumber(seg) + 1
  if i > #arr then return nil end
  return i
end

local function get(doc, key)
  local segs = segments(key)
  if not segs then return doc[key] end
  local cur = doc
  for _, seg in ipairs(segs) do
    if type(cur) ~= "table" then return nil end
    if is_array(cur) then
      local i = index(cur, seg)
      if not i then return nil end
      cur = cur[i]
    else
      cur = cur[seg]
    end
    if cur == nil then return nil end
  end
  return cur
end

local function put(doc, key, value)
  local segs = segments(key)
  if not segs then doc[key] = value return true end
  local cur = doc
  for d, seg in ipairs(segs) do
    local slot = seg
    if is_array(cur) then
      slot = index(cur, seg)
      if not slot then return false end
    end
    if d == #segs then cur[slot] = value return true end
    local nxt = cur[slot]
    if type(nxt) ~= "table" then nxt = {} cur[slot] = nxt end
    cur = nxt
  end
  return true
end

local doc = {}
if rec[3] and rec[3] ~= "" then
  doc = load(rec[3])
  if type(doc) ~= "table" or is_array(doc) then return reply("invalid", rec[3]) end
end
local ops = load(ARGV[4])
if type(ops) ~= "table" then return reply("invalid", rec[3]) end

local applied = false
for _, op in ipairs(ops) do
  local kind, key, value = op.type, op.key, op.value
  local ok = false
  if kind ~= "update" and type(key) ~= "string" then return reply("invalid", rec[3]) end
  if kind == "update" then
    if type(value) ~= "table" or is_array(value) then return reply("invalid", rec[3]) end
    doc, ok = value, true
  elseif kind == "delete" then
    doc[key], ok = nil, true
  elseif kind == "set" then
    ok = put(doc, key, value)
  elseif kind == "append" then
    local cur = get(doc, key)
    if cur == nil then
      ok = put(doc, key, setmetatable({value}, ARR))
    elseif type(cur) == "table" and is_array(cur) then
      local new = setmetatable({}, ARR)
      for i = 1, #cur do new[i] = cur[i] end
      new[#new + 1] = value
      ok = put(doc, key, new)
    else
      ok = put(doc, key, setmetatable({cur, value}, ARR))
    end
  elseif kind == "remove" then
    local cur = get(doc, key)
    if type(cur) == "table" and is_array(cur) then
      local kept = setmetatable({}, ARR)
      for i = 1, #cur do
        if not equal(cur[i], value) then kept[#kept + 1] = cur[i] end
      end
      ok = put(doc, key, kept)
    end
  elseif kind == "increment" then
    local cur = get(doc, key)
    if type(value) ~= "number" then return reply("invalid", rec[3]) end
    ok = put(doc, key, (type(cur) == "number" and cur or 0) + value)
  else
    return reply("invalid", rec[3])
  end
  applied = applied or ok
end
if not applied then return reply("ok", rec[3]) end

local out = {}
local encoded, err = pcall(encode, doc, out)
if not encoded then return reply("invalid", rec[3]) end
local text = table.concat(out)
if #text > tonumber(ARGV[2]) then return reply("too_large", rec[3]) end
redis.call("HSET", KEYS[1], "meta", text, "updated", now)
emit_event(KEYS[1], E.metadata)
return reply("ok", text)
