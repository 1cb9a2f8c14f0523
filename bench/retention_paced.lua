-- wrk script for bench/retention.sh: the signed deliveries of ingest_signed.lua (loaded as is), sent
-- at a steady rate instead of back to back.
--
--   INGEST_LUA      the path of ingest_signed.lua (its environment applies: body, signature, ...)
--   INGEST_RATE     requests a second over the whole run (all threads, all connections)
--   INGEST_THREADS  wrk's -t (each thread sends INGEST_RATE / INGEST_THREADS a second)
--
-- Each thread hands out send times every 1 / (its rate) seconds on the monotonic clock (LuaJIT's
-- FFI: wrk's Lua has no clock); wrk calls delay() before each request of a connection and waits the
-- milliseconds it returns. A thread that fell behind (every connection waiting for an answer) sends
-- at once and does not bank more than a few slots, so a stall is not followed by a burst. The rate is
-- reached as long as the connections can carry it (connections / latency > rate).

dofile(os.getenv("INGEST_LUA"))

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } retention_timespec;
  int clock_gettime(int clock_id, retention_timespec *tp);
]]
local ts = ffi.new("retention_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local rate = tonumber(os.getenv("INGEST_RATE") or "")
local threads = tonumber(os.getenv("INGEST_THREADS") or "")
if rate == nil or rate <= 0 or threads == nil or threads <= 0 then
  error("retention_paced.lua: set INGEST_RATE and INGEST_THREADS (bench/retention.sh does)")
end
local interval = 1000 * threads / rate -- ms between two sends of this thread
local next_slot = nil

function delay()
  local now = now_ms()
  if next_slot == nil or next_slot < now - 4 * interval then next_slot = now end
  next_slot = next_slot + interval
  local wait = next_slot - now
  if wait < 1 then return 0 end
  return math.floor(wait)
end
