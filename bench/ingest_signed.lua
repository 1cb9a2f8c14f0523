-- wrk script for bench/ingest.sh: signed GitHub-style deliveries, each with a unique delivery id.
--
-- GitHub signs only the body (X-Hub-Signature-256 = HMAC-SHA256 of the raw body) and the receiver
-- dedups on the X-GitHub-Delivery header, so a constant body with one precomputed signature and a
-- fresh delivery id per request is a valid stream of distinct deliveries. wrk's LuaJIT has no HMAC,
-- so ingest.sh computes the signature with openssl and hands it over in the environment:
--
--   INGEST_BODY_FILE  the body bytes (sent verbatim; the signature covers exactly these bytes)
--   INGEST_SIGNATURE  "sha256=<64 hex>"
--   INGEST_PREFIX     8 hex digits, random per wrk run (ids stay unique across runs and rounds)
--   INGEST_ACKED      optional: file that receives the eventId of every 2xx answer, one per line
--   INGEST_LABEL      optional: a tag echoed on the result line
--   INGEST_EVENT      optional: the X-GitHub-Event value (default push; ping is verified, not stored)
--   INGEST_TARGETS    optional: "PATH SIGNATURE;PATH SIGNATURE;..." — requests go to these paths in turn, each
--                     with its endpoint's signature of the body (bench/cluster: deliveries over several endpoints)
--   INGEST_IDS        optional: "random" for delivery ids in random order, as providers send them
--
-- Delivery id: <prefix>-<thread>-<thread random>-<thread random>-<per-thread counter>, GUID-shaped: each
-- thread's ids ascend, so the receiver's dedup keys (indexed by id) are inserted at one place a thread. With
-- INGEST_IDS=random: <8 random hex>-<prefix, in two>-<thread>-<per-thread counter>, in no order, as GitHub's
-- GUIDs are; every new key then lands at a random place of the dedup index (bench/README.md, (c)).
-- On exit it prints one machine-readable line that ingest.sh parses:
--   INGEST label=.. requests=.. seconds=.. rps=.. ok2xx=.. non2xx=.. duplicates=.. sent=..
--          err_connect=.. err_read=.. err_write=.. err_timeout=.. p50_us=.. p90_us=.. p99_us=.. max_us=..

local function env(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    if default ~= nil then return default end
    error("ingest_signed.lua: set " .. name .. " (bench/ingest.sh does)")
  end
  return v
end

local threads = {}
local next_tid = 0

-- Runs in the main Lua state once per thread, before that thread's init().
function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state).
-- Defaults keep request() callable in the main state, where wrk may call it without init().
local body, signature, prefix, rand_a, rand_b = "", "sha256=", "00000000", 0, 0
local counter = 0
local targets = {}
local event = os.getenv("INGEST_EVENT") or "push"
local random_ids = os.getenv("INGEST_IDS") == "random"
sent, ok2xx, non2xx, duplicates = 0, 0, 0, 0
acked = {}

function init(args)
  local f = assert(io.open(env("INGEST_BODY_FILE"), "rb"))
  body = f:read("*a")
  f:close()
  signature = env("INGEST_SIGNATURE")
  for path, sig in string.gmatch(os.getenv("INGEST_TARGETS") or "", "([^ ;]+) ([^ ;]+)") do
    targets[#targets + 1] = { path = path, sig = sig }
  end
  prefix = env("INGEST_PREFIX")
  math.randomseed(os.time() * 1000 + (tid or 0))
  rand_a = math.random(0, 0xffff)
  rand_b = math.random(0, 0xffff)
end

function request()
  counter = counter + 1
  sent = sent + 1
  local delivery
  if random_ids then
    delivery = string.format("%04x%04x-%s-%s-%04x-%012x", math.random(0, 0xffff), math.random(0, 0xffff),
      prefix:sub(1, 4), prefix:sub(5, 8), tid or 0, counter)
  else
    delivery = string.format("%s-%04x-%04x-%04x-%012x", prefix, tid or 0, rand_a, rand_b, counter)
  end
  local path, sig = nil, signature
  if #targets > 0 then
    local t = targets[(counter % #targets) + 1]
    path, sig = t.path, t.sig
  end
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "GitHub-Hookshot/bench",
    ["X-GitHub-Event"] = event,
    ["X-GitHub-Delivery"] = delivery,
    ["X-GitHub-Hook-ID"] = "1",
    ["X-Hub-Signature-256"] = sig,
  }, body)
end

function response(status, headers, resp_body)
  if status >= 200 and status < 300 then
    ok2xx = ok2xx + 1
    if resp_body ~= nil and #resp_body > 0 then
      if resp_body:find('"duplicate":true', 1, true) then duplicates = duplicates + 1 end
      local id = resp_body:match('"eventId":"([0-9a-fA-F%-]+)"')
      if id then acked[#acked + 1] = id end
    end
  else
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local t = { sent = 0, ok2xx = 0, non2xx = 0, duplicates = 0 }
  local out = nil
  local path = os.getenv("INGEST_ACKED")
  if path ~= nil and path ~= "" then out = assert(io.open(path, "a")) end
  for _, thread in ipairs(threads) do
    t.sent = t.sent + thread:get("sent")
    t.ok2xx = t.ok2xx + thread:get("ok2xx")
    t.non2xx = t.non2xx + thread:get("non2xx")
    t.duplicates = t.duplicates + thread:get("duplicates")
    if out then
      for _, id in ipairs(thread:get("acked")) do out:write(id, "\n") end
    end
  end
  if out then out:close() end
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "INGEST label=%s requests=%d seconds=%.3f rps=%.1f ok2xx=%d non2xx=%d duplicates=%d sent=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_timeout=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d\n",
    os.getenv("INGEST_LABEL") or "-", summary.requests, seconds, summary.requests / seconds,
    t.ok2xx, t.non2xx, t.duplicates, t.sent, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
