#!/usr/bin/env bash
# Login throughput benchmark for a running authmount (release build).
# Run: bench/run.sh http://127.0.0.1:8200 ROOT_TOKEN
# Makes an RSA-2048 key and an RS256 JWT (exp = now+3600), enables jwt at "jwt", writes config and
# role "bench", checks one login, then runs wrk with bench/login.lua and `openssl speed rsa2048`
# (the raw verify rate of this machine, for comparison). Needs curl, python3 + cryptography, wrk.
set -euo pipefail
ADDR=${1:?usage: bench/run.sh ADDR ROOT_TOKEN}; ROOT=${2:?usage: bench/run.sh ADDR ROOT_TOKEN}
ADDR=${ADDR%/}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT

# Key, JWT, and the config body (PEM JSON-escaped by python).
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
claims = {"iss": "bench", "sub": "bench-user", "aud": "bench", "iat": now, "nbf": now, "exp": now + 3600}
signing_input = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
sig = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
open(f"{out}/jwt", "w").write(signing_input + "." + b64(sig))
json.dump({"jwt_validation_pubkeys": [pem]}, open(f"{out}/config.json", "w"))
PY
JWT=$(cat "$TMP/jwt")

# call METHOD PATH [BODY] -> prints the HTTP status, response body goes to $TMP/out
call() {
  curl -sS -o "$TMP/out" -w '%{http_code}' -X "$1" -H "X-Vault-Token: $ROOT" \
       -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$ADDR/v1/$2"
}
expect() { # expect WHAT STATUS OK-STATUS...
  local what=$1 got=$2; shift 2
  for ok in "$@"; do [[ $got == "$ok" ]] && return 0; done
  echo "$what: HTTP $got: $(cat "$TMP/out")" >&2; exit 1
}

st=$(call POST sys/auth/jwt '{"type":"jwt"}')
[[ $st == 204 ]] || grep -q "already in use" "$TMP/out" || expect "enable jwt" "$st" 204
expect "write config" "$(call POST auth/jwt/config "@$TMP/config.json")" 204 200
expect "write role" "$(call POST auth/jwt/role/bench \
  '{"role_type":"jwt","user_claim":"sub","bound_audiences":["bench"],"token_policies":["p"],"token_ttl":"1h"}')" 204 200
expect "test login" "$(call POST auth/jwt/login "{\"role\":\"bench\",\"jwt\":\"$JWT\"}")" 200
echo "one login OK: HTTP 200"

echo "== wrk -t2 -c32 -d15s (POST /v1/auth/jwt/login) =="
JWT=$JWT ROLE=bench MOUNT=jwt wrk -t2 -c32 -d15s -s "$HERE/login.lua" "$ADDR"
echo "== openssl speed -seconds 3 rsa2048 (raw RSA sign/verify rate, one core) =="
openssl speed -seconds 3 rsa2048 2>/dev/null | grep -vE "^(built on|options|compiler|CPUINFO):"
