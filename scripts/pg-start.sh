#!/usr/bin/env bash
# Starts a throwaway PostgreSQL on a free loopback port and prints its URL (for tests and for trying
# the scale-out mode by hand). Usage: eval "$(scripts/pg-start.sh)"  → sets PICTOR_TEST_DATABASE_URL
# and PG_STOP (the command that stops it and removes its files).
# Needs PostgreSQL's server binaries (Debian: apt-get install -y postgresql); runs initdb as `postgres`.
set -euo pipefail

bin="${PG_BIN:-}"
if [ -z "$bin" ]; then
  for candidate in /usr/lib/postgresql/*/bin; do [ -x "$candidate/initdb" ] && bin="$candidate"; done
fi
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  echo "pg-start: PostgreSQL server binaries not found (apt-get install -y postgresql)" >&2
  exit 1
fi

dir="$(mktemp -d /tmp/pictor-pg.XXXXXX)"
chown postgres:postgres "$dir" 2>/dev/null || true
as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$1"; else sh -c "$1"; fi; }

port="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
as_postgres "'$bin/initdb' -D '$dir/data' -A trust -U postgres --no-sync >'$dir/initdb.log' 2>&1"
as_postgres "'$bin/pg_ctl' -D '$dir/data' -l '$dir/pg.log' -w -o \"-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300\" start >/dev/null"

echo "export PICTOR_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$port/postgres"
echo "export PG_STOP=\"su postgres -s /bin/sh -c \\\"'$bin/pg_ctl' -D '$dir/data' -m fast -w stop\\\" >/dev/null; rm -rf '$dir'\""
