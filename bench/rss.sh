#!/usr/bin/env bash
# Does memory grow with the number of logins? RSS of authmount after 10,000 batch-token logins
# and after more (default 1,000,000 in all), in memory (dev) and on SQLite (the default).
#
#   BENCH_AUTHMOUNT=target/release/authmount bench/rss.sh
#   BENCH_AUTHMOUNT=... BENCH_RSS_COUNTS="10000 100000 1000000" BENCH_ONLY=dev bench/rss.sh
#
# For each storage, one server; batch-token logins (RS256, wrk -t1 -c32, bench/login.lua with
# LIMIT) until the running total reaches each count of BENCH_RSS_COUNTS (default "10000
# 1000000"), VmRSS read from /proc after each. Prints one table: RSS at each count, and the
# last count's RSS over the first's. Batch tokens are not stored, so the store stays the same.
# Environment: BENCH_AUTHMOUNT (required), BENCH_RSS_COUNTS, BENCH_ONLY ("dev sqlite" or one).
# Needs: bash, curl, python3, openssl, wrk. (See bench/common.sh.)
source "$(dirname "$0")/common.sh"
COUNTS=${BENCH_RSS_COUNTS:-10000 1000000}
ONLY=${BENCH_ONLY:-dev sqlite}
ROWS=()
for kind in $ONLY; do
  case $kind in dev) name="in memory (dev)" ;; sqlite) name="SQLite (default)" ;; *) echo "BENCH_ONLY: dev or sqlite" >&2; exit 1 ;; esac
  start_authmount "$kind"
  done_logins=0 first= cells=
  say "$name: RSS at start $(rss_mb "$PID") MB"
  for count in $COUNTS; do
    read -r answers bad rate <<<"$(logins batch $((count - done_logins)))"
    done_logins=$((done_logins + answers))
    [[ $bad == 0 ]] || echo "$name: $bad non-200 answers" >&2
    rss=$(rss_mb "$PID"); first=${first:-$rss}
    cells+=" $rss |"
    say "$name: $done_logins batch logins ($rate/s over the last $answers), RSS $rss MB"
  done
  ROWS+=("| $name |$cells $(python3 -c "print(f'{$rss / $first:.2f}')") |")
  stop_authmount
done
echo
echo "Machine: $(machine); load: wrk -t1 -c32 on the same cores"
echo
header="| storage |"; rule="|---|"
for count in $COUNTS; do header+=" RSS MB after $(commas "$count") |"; rule+="---:|"; done
echo "$header last / first |"; echo "$rule---:|"
printf '%s\n' "${ROWS[@]}"
