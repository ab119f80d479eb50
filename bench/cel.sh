#!/usr/bin/env bash
# Login rate of a role with three CEL claim rules beside the same role without them, in one
# run against a running authmount (release build).
# Run: bench/cel.sh http://127.0.0.1:8200 ROOT_TOKEN [SECONDS]
# Enables jwt at "celbench", writes its config (a fresh RSA-2048 key), role "plain" and role
# "cel3" (the same bindings plus three claim_rules and a policies_expression), checks one login
# through each, then runs wrk with bench/login.lua on plain, cel3, plain, cel3 (SECONDS each,
# default 8) so both see the same machine, and prints one table of the four runs.
# Needs curl, python3 + cryptography, wrk.
set -euo pipefail
ADDR=${1:?usage: bench/cel.sh ADDR ROOT_TOKEN [SECONDS]}; ROOT=${2:?usage: bench/cel.sh ADDR ROOT_TOKEN [SECONDS]}
SECS=${3:-8}
ADDR=${ADDR%/}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

python3 - "$TMP" <<'PY'
import base64, json, sys, time
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
out = sys.argv[1]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                    serialization.PublicFormat.SubjectPublicKeyInfo).decode()
now = int(time.time())
# A GitHub-Actions-like token.
claims = {"iss": "bench", "sub": "repo:acme/app:ref:refs/heads/main", "aud": "bench",
          "iat": now, "nbf": now, "exp": now + 3600, "repository": "acme/app",
          "repository_id": "81234567", "repository_owner_id": "1234567", "ref": "refs/heads/main",
          "environment": "production", "groups": ["team-web", "team-ops", "all", "ci"]}
signing_input = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
open(f"{out}/jwt", "w").write(signing_input + "." + b64(sig))
json.dump({"jwt_validation_pubkeys": [pem]}, open(f"{out}/config.json", "w"))
base = {"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["bench"],
        "token_policies": ["p"], "token_ttl": "1h"}
json.dump(base, open(f"{out}/plain.json", "w"))
json.dump(dict(base, claim_rules=[
    {"expression": 'claims.repository_owner_id == "1234567"', "message": "owner"},
    {"expression": 'claims.repository_id in ["81234567", "81234568"]', "message": "repository"},
    {"expression": 'claims.ref == "refs/heads/main" || claims.ref.startsWith("refs/tags/v")', "message": "ref"},
], policies_expression='claims.groups.filter(g, g.startsWith("team-"))'), open(f"{out}/cel3.json", "w"))
PY
JWT=$(cat "$TMP/jwt")

call() { # call METHOD PATH [BODY] -> the HTTP status; the body goes to $TMP/out
  curl -sS -o "$TMP/out" -w '%{http_code}' -X "$1" -H "X-Vault-Token: $ROOT" \
       -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$ADDR/v1/$2"
}
expect() { # expect WHAT STATUS OK-STATUS...
  local what=$1 got=$2; shift 2
  for ok in "$@"; do [[ $got == "$ok" ]] && return 0; done
  echo "$what: HTTP $got: $(cat "$TMP/out")" >&2; exit 1
}

st=$(call POST sys/auth/celbench '{"type":"jwt"}')
[[ $st == 204 ]] || grep -q "already in use" "$TMP/out" || expect "enable jwt" "$st" 204
expect "write config" "$(call POST auth/celbench/config "@$TMP/config.json")" 204 200
for ROLE in plain cel3; do
  expect "write role $ROLE" "$(call POST auth/celbench/role/$ROLE "@$TMP/$ROLE.json")" 204 200
  expect "login $ROLE" "$(call POST auth/celbench/login "{\"role\":\"$ROLE\",\"jwt\":\"$JWT\"}")" 200
  echo "one login through $ROLE: HTTP 200, policies $(grep -o '"token_policies":[^]]*]' "$TMP/out")"
done

ROWS=()
RUN=0
for ROLE in plain cel3 plain cel3; do
  RUN=$((RUN + 1))
  echo "== run $RUN, $ROLE: wrk -t2 -c32 -d${SECS}s =="
  OUT=$(JWT=$JWT ROLE=$ROLE MOUNT=celbench wrk -t2 -c32 -d"${SECS}s" --latency -s "$HERE/login.lua" "$ADDR")
  grep -E "Requests/sec|logins:|non-200" <<<"$OUT"
  ROWS+=("$(printf '| %d | %s | %s | %s | %s | %s |' "$RUN" "$ROLE" \
    "$(awk '/^Requests\/sec/ {printf "%d", $2}' <<<"$OUT")" "$(awk '$1=="50%" {print $2}' <<<"$OUT")" \
    "$(awk '$1=="99%" {print $2}' <<<"$OUT")" "$(awk '/^logins:/ {print $4}' <<<"$OUT")")")
done
echo
echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); load: wrk -t2 -c32 -d${SECS}s on the same cores"
echo
echo "| run | role | logins/s | p50 | p99 | non-200 |"
echo "|---:|---|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
