-- Follows advocates' share links (GET /r/{code}) as new visitors: every request from an address of its own, sent in
-- X-Forwarded-For as a shop's proxy or CDN forwards it (the server trusts 127.0.0.1 as its proxy in this run).
-- Arguments (after "--"): file of "code clickId" lines (the click ids are not used here).

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local codes, n = {}, 0

function init(args)
  for line in io.lines(args[1]) do
    local code = line:match("^(%S+)")
    if code then
      codes[#codes + 1] = code
    end
  end
  if #codes == 0 then
    error("no referral codes in " .. args[1])
  end
end

function request()
  n = n + 1
  -- 10.t.x.y: a million addresses per thread before one comes back.
  local address = string.format("10.%d.%d.%d", (tid * 16 + math.floor(n / 62500)) % 256, math.floor(n / 250) % 250, n % 250 + 1)
  return wrk.format("GET", "/r/" .. codes[(n % #codes) + 1], { ["X-Forwarded-For"] = address })
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d,' ..
    '"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"statusErrors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
