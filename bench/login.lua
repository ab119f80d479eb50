-- wrk script: hammers POST /v1/auth/<MOUNT>/login with one JWT and counts non-200 answers.
-- Run: JWT=<compact jws> [ROLE=bench] [MOUNT=jwt] wrk -t2 -c32 -d15s -s bench/login.lua http://127.0.0.1:8200
-- (bench/run.sh sets everything up and runs this.)
-- Optional, for filling a store (bench/scaling.sh, bench/rss.sh; one wrk thread, -t1):
--   LIMIT=N   stop (the whole wrk process) after N answers, printing the "logins:" line;
--   SAVE=FILE append "<client_token> <accessor>" of every 200 answer to FILE.
local jwt = os.getenv("JWT") or error("set JWT to a signed token")
local role = os.getenv("ROLE") or "bench"
local mount = os.getenv("MOUNT") or "jwt"
local limit = tonumber(os.getenv("LIMIT") or "")
local save = os.getenv("SAVE")
if save == "" then save = nil end

wrk.method = "POST"
wrk.path = "/v1/auth/" .. mount .. "/login"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"role":"' .. role .. '","jwt":"' .. jwt .. '"}'

local threads = {}
function setup(thread) table.insert(threads, thread) end

-- runs in each thread's own Lua state; done() reads the counters back with thread:get
function init(args)
  responses, non200, first_bad = 0, 0, ""
  if save then saved = assert(io.open(save, "a")) end
end
function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 then
    non200 = non200 + 1
    if first_bad == "" then first_bad = status .. " " .. (body or "") end
  elseif saved then
    local token = string.match(body, '"client_token":"([^"]+)"')
    local accessor = string.match(body, '"accessor":"([^"]*)"')
    if token then saved:write(token, " ", accessor or "", "\n") end
  end
  if limit and responses >= limit then
    if saved then saved:close() end
    io.write(string.format("logins: %d responses, %d non-200\n", responses, non200))
    if non200 > 0 then io.write("first non-200: " .. first_bad .. "\n") end
    io.stdout:flush()
    os.exit(0)
  end
end

function done(summary, latency, requests)
  local n, bad, sample = 0, 0, ""
  for _, t in ipairs(threads) do
    n = n + t:get("responses")
    bad = bad + t:get("non200")
    if sample == "" then sample = t:get("first_bad") end
  end
  io.write(string.format("logins: %d responses, %d non-200\n", n, bad))
  if bad > 0 then io.write("first non-200: " .. sample .. "\n") end
end
