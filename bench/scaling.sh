#!/usr/bin/env bash
# Does anything slow down as the token store grows? One table: for each storage and each size,
# the same measurements against the same server, grown from one size to the next.
#
#   BENCH_AUTHMOUNT=target/release/authmount bench/scaling.sh
#   BENCH_AUTHMOUNT=... BENCH_SIZES="10000 100000 1000000" \
#     BENCH_POSTGRES_URL=postgres://authmount:authmount@127.0.0.1/authmount_bench bench/scaling.sh
#                       # ... also on PostgreSQL. THE DATABASE IS WIPED (schema public dropped).
#
# For each storage (SQLite, the default, in a fresh data directory; PostgreSQL when
# BENCH_POSTGRES_URL is set), one server; for each size N of BENCH_SIZES (default "10000
# 100000"), in order:
#   1. fill: service-token logins (RS256, wrk -t1 -c32, bench/login.lua) until about N tokens
#      are stored (every token is kept for the run: token_ttl 6h); their rate is "fill/s";
#   2. sweep: three tokens with ttl=1s are created, and the script waits for the server's
#      periodic sweep of expired tokens (every 60 s; it reads only the buckets of the expiry
#      index that are due) to log them removed; "sweep s" is the time from the first tick that
#      finds them due (ticks at server start + k·60 s; a token is due from the first whole
#      minute after it expired) to that line ("back to back": the sweep before was still
#      running at that tick);
#   3. lookup-self: wrk (bench/lookup.lua) cycling through 20,000 stored tokens drawn at random
#      (more than the 16,384 values the cache keeps), BENCH_SECONDS (default 8) seconds;
#   4. login: service-token logins, BENCH_SECONDS seconds (their tokens join the store);
#   5. revocation: 1,000 stored tokens drawn at random, revoked one after the other
#      (auth/token/revoke-accessor, one keep-alive connection); "1,000 revocations s".
# Steps 3-5 start right after a sweep, so that the next one (60 s later) does not overlap them.
# Environment: BENCH_AUTHMOUNT (required), BENCH_SIZES, BENCH_SECONDS, BENCH_POSTGRES_URL,
# BENCH_ONLY ("sqlite pg", the default, or one of them).
# Needs: bash, curl, python3, openssl, wrk; psql with BENCH_POSTGRES_URL. (See bench/common.sh.)
source "$(dirname "$0")/common.sh"
SIZES=${BENCH_SIZES:-10000 100000}
SECS=${BENCH_SECONDS:-8}
PG_URL=${BENCH_POSTGRES_URL:-}
ONLY=${BENCH_ONLY:-sqlite pg}
ROWS=()

# wait_sweep: creates three 1-second tokens and waits for the sweep that removes them; prints
# its duration in seconds.
wait_sweep() {
  local before made t0 line
  before=$(grep -c "swept expired tokens" "$LOG" || true)
  made=$(date -u +%Y-%m-%dT%H:%M:%S.%N)
  for _ in 1 2 3; do
    must "short token" "$(call "$ROOT" POST auth/token/create '{"ttl":"1s","policies":["p"]}')" 200
  done
  for _ in $(seq 1 2400); do
    [[ $(grep -c "swept expired tokens" "$LOG" || true) -gt $before ]] && break
    sleep 0.1
  done
  if (( $(grep -c "swept expired tokens" "$LOG" || true) <= before )); then
    echo "no sweep removed them within 4 minutes" >&2; echo "none in 240"; return
  fi
  line=$(grep "swept expired tokens" "$LOG" | tail -1)
  t0=$(grep -m1 "actix_server::builder: starting" "$LOG" | cut -d' ' -f1)
  python3 - "$t0" "${line%% *}" "$made" <<'PY'
import math, sys
from datetime import datetime, timezone
t0, t, made = (datetime.fromisoformat(a.rstrip("Z")[:26]).replace(tzinfo=timezone.utc) for a in sys.argv[1:])
# Ticks are at server start + k * 60 s. The tokens expire 1 s after they were made and are
# filed under the first whole minute after that; the first tick from that minute on starts the
# sweep that removes them, unless the sweep before is still running then (back to back).
due = (math.floor((made.timestamp() + 1) / 60) + 1) * 60 - t0.timestamp()
first = 60 * math.ceil(due / 60)
since = (t - t0).total_seconds() - first
print(f"{since:.1f}" if since < 60 else f"back to back ({since:.0f} after its tick)")
PY
}

# pick COUNT OUT: COUNT stored tokens drawn at random (none revoked) as "token accessor" lines.
pick() {
  python3 - "$WORK/tokens" "$WORK/revoked" "$1" "$2" <<'PY'
import random, sys
tokens, revoked, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
gone = set(open(revoked).read().split())
live = [l for l in open(tokens).read().splitlines() if l.split()[1:] and l.split()[1] not in gone]
open(out, "w").write("\n".join(random.sample(live, min(count, len(live)))) + "\n")
PY
}

# revoke_all FILE: revokes the accessors of FILE one by one; prints the seconds it took.
revoke_all() {
  python3 - "$ADDR" "$ROOT" "$1" <<'PY'
import http.client, json, sys, time, urllib.parse
addr, root, path = sys.argv[1:]
u = urllib.parse.urlparse(addr)
conn = http.client.HTTPConnection(u.hostname, u.port)
accessors = [l.split()[1] for l in open(path).read().splitlines()]
start = time.monotonic()
for a in accessors:
    conn.request("POST", "/v1/auth/token/revoke-accessor", json.dumps({"accessor": a}),
                 {"X-Vault-Token": root, "Content-Type": "application/json"})
    r = conn.getresponse(); body = r.read()
    if r.status != 204:
        sys.exit(f"revoke-accessor: HTTP {r.status}: {body[:200]!r}")
print(f"{time.monotonic() - start:.2f}")
PY
  cat "$1" | cut -d' ' -f2 >>"$WORK/revoked"
}

measure_storage() { # measure_storage NAME KIND [PG_URL]
  local name=$1 stored=0 n fill sweep lk lg rv
  say "$name: starting"
  start_authmount "$2" "${3:-}"
  : >"$WORK/tokens"; : >"$WORK/revoked"
  for n in $SIZES; do
    if (( n > stored )); then
      say "$name: filling to $n stored tokens"
      read -r answers bad fill <<<"$(logins service $((n - stored)) "$WORK/tokens")"
      stored=$((stored + answers - bad))
    fi
    say "$name: $stored stored; waiting for a sweep"
    sweep=$(wait_sweep)
    say "$name: lookup-self"
    pick 20000 "$WORK/lookup-tokens"
    read -r lk lk50 lk99 lkbad _ <<<"$(rate lookup.lua "$SECS" TOKENS="$WORK/lookup-tokens")"
    say "$name: logins"
    read -r lg lg50 lg99 lgbad lgn <<<"$(rate login.lua "$SECS" JWT="$JWT" ROLE=service MOUNT=jwt SAVE="$WORK/tokens")"
    say "$name: 1,000 revocations"
    pick 1000 "$WORK/revoke"
    rv=$(revoke_all "$WORK/revoke")
    ROWS+=("$(printf '| %s | %s | %s | %s (%s / %s) | %s (%s / %s) | %s | %s | %s |' "$name" \
      "$(commas "$stored")" "$(commas "$fill")" \
      "$(commas "$lk")" "$lk50" "$lk99" "$(commas "$lg")" "$lg50" "$lg99" \
      "$rv" "$sweep" "$(rss_mb "$PID")")")
    printf '%s\n' "${ROWS[-1]}" >&2
    [[ ${lkbad:-0} == 0 && ${lgbad:-0} == 0 ]] || ROWS+=("| (non-200 answers above: lookups $lkbad, logins $lgbad) |")
    stored=$((stored + lgn - 1000))
  done
  stop_authmount
}

[[ " $ONLY " != *" sqlite "* ]] || measure_storage "SQLite" sqlite
[[ -z $PG_URL || " $ONLY " != *" pg "* ]] || measure_storage "PostgreSQL" pg "$PG_URL"

echo
echo "Machine: $(machine); load: wrk -t1 -c32 on the same cores; lookups and logins ${SECS}s each"
echo
echo "| storage | tokens stored | fill logins/s | lookup-self/s (p50 / p99) | logins/s (p50 / p99) | 1,000 revocations, s | sweep, s | RSS MB |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
