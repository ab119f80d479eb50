-- wrk script: GET /v1/auth/token/lookup-self, each request with the next token of TOKENS (a
-- file, one token per line, its first word), and counts non-200 answers.
-- Run: TOKENS=file wrk -t1 -c32 -d8s -s bench/lookup.lua http://127.0.0.1:8200
-- (bench/scaling.sh makes the file and runs this.)
local file = os.getenv("TOKENS") or error("set TOKENS to a file of tokens")
local threads = {}
function setup(thread) table.insert(threads, thread) end

function init(args)
  tokens, next_token, responses, non200, first_bad = {}, 0, 0, 0, ""
  for line in io.lines(file) do table.insert(tokens, (string.match(line, "^(%S+)"))) end
  assert(#tokens > 0, "no tokens in " .. file)
end
function request()
  next_token = next_token % #tokens + 1
  return wrk.format("GET", "/v1/auth/token/lookup-self", { ["X-Vault-Token"] = tokens[next_token] })
end
function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 then
    non200 = non200 + 1
    if first_bad == "" then first_bad = status .. " " .. (body or "") end
  end
end

function done(summary, latency, requests)
  local n, bad, sample = 0, 0, ""
  for _, t in ipairs(threads) do
    n = n + t:get("responses")
    bad = bad + t:get("non200")
    if sample == "" then sample = t:get("first_bad") end
  end
  io.write(string.format("lookups: %d responses, %d non-200\n", n, bad))
  if bad > 0 then io.write("first non-200: " .. sample .. "\n") end
end
