-- bench/lua_tables.lua - the Lua workload of bench/run.py (run by bench/realprog.py lua).
--
-- lua5.4 bench/lua_tables.lua [N [ROUNDS]]: each round builds N records (tables holding
-- strings, an array of tags, a nested table), serializes them to a JSON-like string with a
-- small serializer (sorted keys, escapes, table.concat buffers), parses that text back with a
-- small recursive-descent parser (one substring per key and value), sorts the records by
-- (score, name, id), indexes them by name, counts the words of their texts, formats a report
-- line per record and rewrites the text with gsub. The previous round's tables and strings
-- become garbage as the next round replaces them. Lua allocates through realloc/free only, so
-- every table, string and closure goes to the allocator under test.
--
-- Output: one summary line per round, then "ops=N*ROUNDS records=N rounds=ROUNDS". Nothing in
-- it depends on addresses, the string-hash seed (pairs order is never printed) or the
-- allocator, so bench/realprog.py checks its sha256 against a run under glibc.
local N = tonumber(arg[1]) or 5000
local ROUNDS = tonumber(arg[2]) or 3

local words = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
               "india", "juliet", "kilo", "lima", "mike", "november", "oscar", "papa",
               "quebec", "romeo", "sierra", "tango", "uniform", "victor", "whiskey", "xray",
               "yankee", "zulu", "quote\"d", "back\\slash", "tab\tbed", "new\nline", "x", "yz"}
local NW = #words

local function make_record(i, r)
  local tags = {}
  for k = 1, 1 + (i * 7 + r) % 6 do
    tags[k] = words[(i * k + r) % NW + 1] .. k
  end
  local parts = {}
  for k = 1, (i % 13) + 1 do
    parts[k] = words[(i + k * r + k * k) % NW + 1]
  end
  return {
    id = i,
    name = "user" .. ((i * 7919 + r) % N),
    score = ((i * 7919 + r * 31) % 10007) / 8,
    tags = tags,
    text = table.concat(parts, " "),
    nested = {x = i % 17, y = {i % 3, i % 5, "n" .. (i % 11)}, flag = (i % 2 == 0)},
  }
end

-- ------------------------------------------------------------------ serializer

local escapes = {['"'] = '\\"', ['\\'] = '\\\\', ['\n'] = '\\n', ['\t'] = '\\t'}
local function esc(c)
  return escapes[c] or string.format("\\u%04x", c:byte())
end

local encode
local function encode_into(v, buf)
  local t = type(v)
  if t == "string" then
    buf[#buf + 1] = '"' .. v:gsub('[%c"\\]', esc) .. '"'
  elseif t == "number" then
    if math.type(v) == "integer" then
      buf[#buf + 1] = string.format("%d", v)
    else
      buf[#buf + 1] = string.format("%.14g", v)
    end
  elseif t == "boolean" then
    buf[#buf + 1] = v and "true" or "false"
  elseif t == "table" then
    if #v > 0 then
      buf[#buf + 1] = "["
      for k = 1, #v do
        if k > 1 then buf[#buf + 1] = "," end
        encode_into(v[k], buf)
      end
      buf[#buf + 1] = "]"
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys)
      buf[#buf + 1] = "{"
      for n, k in ipairs(keys) do
        if n > 1 then buf[#buf + 1] = "," end
        encode_into(k, buf)
        buf[#buf + 1] = ":"
        encode_into(v[k], buf)
      end
      buf[#buf + 1] = "}"
    end
  else
    error("cannot encode " .. t)
  end
end
encode = function(v)
  local buf = {}
  encode_into(v, buf)
  return table.concat(buf)
end

-- ------------------------------------------------------------------ parser

local unesc = {['"'] = '"', ['\\'] = '\\', n = '\n', t = '\t'}
local decode_at
local function skip(s, p)
  return s:find("[^ \n\t]", p) or #s + 1
end
decode_at = function(s, p)
  p = skip(s, p)
  local c = s:sub(p, p)
  if c == "{" then
    local obj = {}
    p = skip(s, p + 1)
    if s:sub(p, p) == "}" then return obj, p + 1 end
    while true do
      local k
      k, p = decode_at(s, p)
      p = skip(s, p)
      assert(s:sub(p, p) == ":", "expected ':'")
      local v
      v, p = decode_at(s, p + 1)
      obj[k] = v
      p = skip(s, p)
      c = s:sub(p, p)
      if c == "}" then return obj, p + 1 end
      assert(c == ",", "expected ','")
      p = p + 1
    end
  elseif c == "[" then
    local arr = {}
    p = skip(s, p + 1)
    if s:sub(p, p) == "]" then return arr, p + 1 end
    while true do
      local v
      v, p = decode_at(s, p)
      arr[#arr + 1] = v
      p = skip(s, p)
      c = s:sub(p, p)
      if c == "]" then return arr, p + 1 end
      assert(c == ",", "expected ','")
      p = p + 1
    end
  elseif c == '"' then
    local q = p + 1
    local pieces = {}
    while true do
      local a = s:find('["\\]', q)
      pieces[#pieces + 1] = s:sub(q, a - 1)
      if s:sub(a, a) == '"' then
        return table.concat(pieces), a + 1
      end
      local e = s:sub(a + 1, a + 1)
      if e == "u" then
        pieces[#pieces + 1] = string.char(tonumber(s:sub(a + 2, a + 5), 16))
        q = a + 6
      else
        pieces[#pieces + 1] = unesc[e]
        q = a + 2
      end
    end
  elseif c == "t" then
    return true, p + 4
  elseif c == "f" then
    return false, p + 5
  else
    local num = s:match("^-?[%d.eE+-]+", p)
    return math.tointeger(tonumber(num)) or tonumber(num), p + #num
  end
end
local function decode(s)
  local v = decode_at(s, 1)
  return v
end

-- ------------------------------------------------------------------ rounds

local function by_score(a, b)
  if a.score ~= b.score then return a.score < b.score end
  if a.name ~= b.name then return a.name < b.name end
  return a.id < b.id
end

local out = {}
for r = 1, ROUNDS do
  local recs = {}
  for i = 1, N do recs[i] = make_record(i, r) end
  local text = encode(recs)
  local back = decode(text)
  assert(#back == N, "decoded record count")
  table.sort(back, by_score)

  local index, names = {}, 0
  for _, rec in ipairs(back) do
    if not index[rec.name] then names = names + 1 end
    index[rec.name] = rec
  end

  local freq = {}
  for _, rec in ipairs(back) do
    for w in rec.text:gmatch("%a+") do freq[w] = (freq[w] or 0) + 1 end
    for _, tag in ipairs(rec.tags) do freq[tag] = (freq[tag] or 0) + 1 end
  end
  local fw = {}
  for w, n in pairs(freq) do fw[#fw + 1] = w .. "=" .. n end
  table.sort(fw)

  -- a report line per record, built with .. and string.format, joined in blocks of 64
  local blocks, line = {}, ""
  for k, rec in ipairs(back) do
    line = line .. string.format("%06d|%-12s|%9.3f|%s|", rec.id, rec.name, rec.score,
                                 table.concat(rec.tags, ",")) .. rec.nested.y[3] .. "\n"
    if k % 64 == 0 then
      blocks[#blocks + 1] = line
      line = ""
    end
  end
  blocks[#blocks + 1] = line
  local report = table.concat(blocks)

  local renamed, nsub = text:gsub('"user(%d+)"', '"u%1"')
  local again = encode(decode(renamed))

  local sum = 0
  for k = 1, #back, 97 do sum = (sum * 31 + back[k].id + #back[k].text) % 1000000007 end
  out[#out + 1] = string.format(
    "round %d: json=%d renamed=%d subs=%d again=%d first=%d last=%d names=%d words=%d " ..
    "report=%d sum=%d top=%s", r, #text, #renamed, nsub, #again, back[1].id, back[N].id,
    names, #fw, #report, sum, fw[1] .. "," .. fw[#fw])
end
for _, l in ipairs(out) do print(l) end
print(string.format("ops=%d records=%d rounds=%d", N * ROUNDS, N, ROUNDS))
