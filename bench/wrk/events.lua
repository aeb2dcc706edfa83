-- POSTs attributed purchases: a unique friend e-mail and order id on every request, alternating between an
-- advocate's referral code and a click id from that advocate's share link.
-- Arguments (after "--"): run prefix, campaign id, admin key, file of "code clickId" lines, optionally "async"
-- to send "Prefer: respond-async" (answered once the event alone is durable), and optionally "unattributed" to send
-- purchases with neither code nor click id (most of a shop's purchases: attribution then looks for earlier clicks).
-- The bare Kestrel ceiling is loaded with this same script, so both pay the same load-generator cost.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local prefix, campaign, refs, n, unattributed = "", "", {}, 0, false

function init(args)
  prefix, campaign = args[1], args[2]
  wrk.method = "POST"
  wrk.headers["Authorization"] = "Bearer " .. args[3]
  wrk.headers["Content-Type"] = "application/json"
  if args[5] == "async" then
    wrk.headers["Prefer"] = "respond-async"
  end
  unattributed = args[6] == "unattributed"
  for line in io.lines(args[4]) do
    local code, click = line:match("^(%S+)%s+(%S+)$")
    if code then
      refs[#refs + 1] = { code, click }
    end
  end
  if #refs == 0 then
    error("no referral codes in " .. args[4])
  end
end

local template = '{"campaignId":"%s","type":"purchase","email":"f-%s@example.net","name":"Bench Friend %d",%s,' ..
  '"orderId":"o-%s","purchaseValue":120.5,"currency":"USD","ip":"198.51.100.%d",' ..
  '"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",' ..
  '"properties":{"plan":"pro","channel":"newsletter","sku":"SKU-00042","landing":"spring-sale"}}'

function request()
  n = n + 1
  local id = prefix .. "-" .. tid .. "-" .. n
  local ref = refs[(n % #refs) + 1]
  local attribution
  if unattributed then
    attribution = '"referralCode":null,"clickId":null'
  elseif n % 2 == 0 then
    attribution = '"referralCode":"' .. ref[1] .. '","clickId":null'
  else
    attribution = '"referralCode":null,"clickId":"' .. ref[2] .. '"'
  end
  return wrk.format(nil, nil, nil, string.format(template, campaign, id, n, attribution, id, n % 250))
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"maxUs":%d,' ..
    '"connectErrors":%d,"readErrors":%d,"writeErrors":%d,"statusErrors":%d,"timeouts":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
