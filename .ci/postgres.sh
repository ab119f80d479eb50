#!/usr/bin/env bash
# Installs (when missing) and starts a local PostgreSQL from Debian's packages, makes a role
# `authmount` that may create databases and a database `authmount_test`, and prints the URL
# for AUTHMOUNT_TEST_POSTGRES_URL. Run it as root or as a user who may `sudo` (it asks sudo for
# itself). Safe to run again: each run starts the tests on a new, empty `authmount_test` (a
# database left by an older checkout, with migrations this one does not know, would fail them). On any failure it prints nothing on stdout and exits
# non-zero, so `URL=$(.ci/postgres.sh) && export ...` never exports an empty URL:
#   URL=$(.ci/postgres.sh) && export AUTHMOUNT_TEST_POSTGRES_URL=$URL
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "postgres.sh: needs root, and sudo is not installed" >&2; exit 1; }
  exec sudo -- bash "$0" "$@"
fi
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
ver=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$ver main" || pg_createcluster "$ver" main >&2
pg_ctlcluster "$ver" main start >&2 2>/dev/null || true   # already running is fine
port=$(pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main" {print $3}')
psql_admin() { su postgres -c "psql -p $port -qAt -c \"$1\""; }
for _ in $(seq 1 30); do psql_admin "SELECT 1" >/dev/null 2>&1 && break; sleep 1; done
psql_admin "CREATE ROLE authmount LOGIN" >/dev/null 2>&1 || true
psql_admin "ALTER ROLE authmount LOGIN CREATEDB PASSWORD 'authmount'" >/dev/null
psql_admin "DROP DATABASE IF EXISTS authmount_test WITH (FORCE)" >/dev/null
psql_admin "CREATE DATABASE authmount_test OWNER authmount" >/dev/null
echo "postgres://authmount:authmount@127.0.0.1:$port/authmount_test"
