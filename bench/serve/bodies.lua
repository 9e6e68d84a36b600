-- wrk script for bench/serve/run.py: POSTs JSON bodies read from a file, one body per line, in turn.
--   wrk -s bodies.lua URL -- BODIES_FILE
-- Each wrk thread pre-formats every request once in init(), so request() costs a table lookup;
-- done() prints one JSON line (prefixed "NCF-BENCH ") that run.py parses.

local requests = {}
local count = 0
local next_index = 0

function init(args)
  local file = assert(io.open(args[1], "r"))
  local headers = { ["Content-Type"] = "application/json" }
  for line in file:lines() do
    if #line > 0 then
      count = count + 1
      requests[count] = wrk.format("POST", nil, headers, line)
    end
  end
  file:close()
  assert(count > 0, "no bodies in " .. args[1])
  next_index = math.random(count) - 1  -- threads start at different bodies
end

function request()
  next_index = next_index % count + 1
  return requests[next_index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'NCF-BENCH {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
