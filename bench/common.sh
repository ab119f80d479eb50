# Shared by bench/scaling.sh and bench/rss.sh (sourced, not run): a work directory removed at
# exit with every server started here, an RSA-2048 key with one RS256 JWT (valid 6 hours), jwt
# set up at `jwt` with a `batch` and a `service` role (token_ttl 6h), and authmount started in
# memory (dev), on SQLite (a fresh data directory) or on PostgreSQL (the URL's database is
# WIPED first: give one that holds nothing else).
# Needs: bash, curl, python3, openssl, wrk; psql for PostgreSQL.
set -euo pipefail
BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { echo "== $(date -u +%H:%M:%S) $*" >&2; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 1; }
AUTHMOUNT=${BENCH_AUTHMOUNT:?set BENCH_AUTHMOUNT to a release authmount binary}

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/key.pem" 2>/dev/null
openssl pkey -in "$WORK/key.pem" -pubout -out "$WORK/pub.pem"
python3 - "$WORK" <<'PY'
import base64, json, subprocess, sys, time
out = sys.argv[1]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
claims = {"iss": "bench", "sub": "bench-user", "aud": "bench", "iat": now, "nbf": now, "exp": now + 6 * 3600}
signing_input = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", f"{out}/key.pem"],
                     input=signing_input.encode(), capture_output=True, check=True).stdout
open(f"{out}/jwt", "w").write(signing_input + "." + b64(sig))
json.dump({"jwt_validation_pubkeys": [open(f"{out}/pub.pem").read()]}, open(f"{out}/config.json", "w"))
for kind in ("batch", "service"):
    json.dump({"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["bench"],
               "token_policies": ["p"], "token_ttl": "6h", "token_type": kind},
              open(f"{out}/role-{kind}.json", "w"))
PY
JWT=$(cat "$WORK/jwt")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_mb() { awk '/VmRSS/ {printf "%d", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }

# call TOKEN METHOD PATH [BODY] -> the HTTP status; the body goes to $WORK/out (uses $ADDR)
call() {
  curl -sS -o "$WORK/out" -w '%{http_code}' -X "$2" -H "X-Vault-Token: $1" \
       -H 'Content-Type: application/json' ${4:+--data-binary "$4"} "$ADDR/v1/$3"
}
must() { # must WHAT STATUS OK...
  local what=$1 got=$2; shift 2
  for ok in "$@"; do [[ $got == "$ok" ]] && return 0; done
  echo "$what: HTTP $got: $(cat "$WORK/out")" >&2; exit 1
}
json_field() { python3 -c "import json,sys; d=json.load(open('$WORK/out')); print($1)"; }

# start_authmount dev|sqlite|pg [PG_URL]: starts a server and sets ADDR, ROOT, PID, LOG.
start_authmount() {
  local port; port=$(free_port); ADDR="http://127.0.0.1:$port"; LOG="$WORK/$1.log"
  case $1 in
    dev)
      ROOT=root
      "$AUTHMOUNT" server -dev -dev-root-token-id=root "-dev-listen-address=127.0.0.1:$port" >"$LOG" 2>&1 & ;;
    sqlite)
      "$AUTHMOUNT" server "-data-dir=$WORK/sqlite-data" "-listen-address=127.0.0.1:$port" >"$LOG" 2>&1 & ;;
    pg)
      psql -q "$2" -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' >/dev/null 2>&1
      openssl rand -hex 32 >"$WORK/seal.key"
      cat >"$WORK/pg.hcl" <<EOF
storage "postgresql" { connection_url = "$2" }
listener "tcp" {
  address     = "127.0.0.1:$port"
  tls_disable = true
}
seal "static" {
  current_key_id = "bench"
  current_key    = "file://$WORK/seal.key"
}
EOF
      "$AUTHMOUNT" server "-config=$WORK/pg.hcl" >"$LOG" 2>&1 & ;;
  esac
  PID=$!; PIDS+=("$PID")
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "$ADDR/v1/sys/seal-status" && break
    kill -0 "$PID" 2>/dev/null || { echo "server exited:" >&2; cat "$LOG" >&2; exit 1; }
    sleep 0.1
  done
  case $1 in
    sqlite) ROOT=$(sed -n 's/.*Root Token: \([^ ]*\).*/\1/p' "$LOG") ;;
    pg) must "init" "$(call "" PUT sys/init '{}')" 200; ROOT=$(json_field 'd["root_token"]') ;;
  esac
  must "enable jwt" "$(call "$ROOT" POST sys/auth/jwt '{"type":"jwt"}')" 200 204
  must "jwt config" "$(call "$ROOT" POST auth/jwt/config "@$WORK/config.json")" 200 204
  for kind in batch service; do
    must "role $kind" "$(call "$ROOT" POST "auth/jwt/role/$kind" "@$WORK/role-$kind.json")" 200 204
    must "one $kind login" "$(call "" POST auth/jwt/login "{\"role\":\"$kind\",\"jwt\":\"$JWT\"}")" 200
  done
}
stop_authmount() { kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; }

# logins ROLE COUNT [SAVE-FILE]: COUNT logins (wrk -t1 -c32) on ROLE; prints "<answers> <non-200>
# <logins/s>" (the rate over the wall time).
logins() {
  local start end out
  start=$(date +%s.%N)
  out=$(JWT=$JWT ROLE=$1 MOUNT=jwt LIMIT=$2 SAVE=${3:-} wrk -t1 -c32 -d100000s -s "$BENCH_DIR/login.lua" "$ADDR")
  end=$(date +%s.%N)
  grep -q '^logins:' <<<"$out" || { echo "wrk: $out" >&2; exit 1; }
  grep '^first non-200' <<<"$out" >&2 || true
  awk -v s="$start" -v e="$end" '/^logins:/ {printf "%d %d %d\n", $2, $4, $2 / (e - s)}' <<<"$out"
}

# rate SCRIPT SECONDS [ENV=VALUE...]: wrk -t1 -c32 --latency with a script of bench/; prints
# "<requests/s> <p50> <p99> <non-200> <answers>".
rate() {
  local script=$1 secs=$2 out; shift 2
  out=$(env "$@" wrk -t1 -c32 -d"${secs}s" --latency -s "$BENCH_DIR/$script" "$ADDR")
  grep '^first non-200' <<<"$out" >&2 || true
  printf '%s %s %s %s %s\n' "$(awk '/^Requests\/sec/ {printf "%d", $2}' <<<"$out")" \
    "$(awk '$1=="50%" {print $2}' <<<"$out")" "$(awk '$1=="99%" {print $2}' <<<"$out")" \
    "$(awk '/^(logins|lookups):/ {print $4}' <<<"$out")" "$(awk '/^(logins|lookups):/ {print $2}' <<<"$out")"
}
machine() { echo "$(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"; }
commas() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
