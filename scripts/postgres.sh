#!/usr/bin/env bash
# Optional: a PostgreSQL cluster for the hub on 127.0.0.1:5433, data in .run/pg.
# Installs Debian's `postgresql` when absent (root + apt-get), runs initdb/pg_ctl
# as the `postgres` user when root (as yourself otherwise), creates role and
# database hub/hub with password hub. Idempotent. Progress goes to stderr; the
# one line on stdout is the URL, so this works:
#
#   export HUB_DATABASE_URL=$(scripts/postgres.sh)
#
# Stop it with scripts/stop.sh (or scripts/stop.sh postgres); `scripts/postgres.sh stop`
# stops the server alone (fast shutdown, data kept): the database-restart fault test.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${HUB_PG_PORT:-5433}
PGDATA=$PWD/.run/pg
URL="postgresql+asyncpg://hub:hub@127.0.0.1:$PORT/hub"

log() { echo "postgres: $*" >&2; }
die() { log "$*"; exit 1; }

# Debian's binaries first (/usr/local/bin may hold other builds or wrappers).
find_bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -n "$d" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then
    echo "$d"; return 0
  fi
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"; return 0
  fi
  return 1
}

if ! BIN=$(find_bindir); then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing postgresql with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    BIN=$(find_bindir) || die "postgresql installed but pg_ctl/initdb not found"
  else
    die "PostgreSQL server binaries not found: install Debian's postgresql as root"
  fi
fi

# As root, the server runs as `postgres` (it refuses to run as root).
if [ "$(id -u)" -eq 0 ]; then
  id postgres >/dev/null 2>&1 || die "no 'postgres' user (is Debian's postgresql installed?)"
  as_pg() { runuser -u postgres -- "$@"; }
  OWNER=postgres
else
  as_pg() { "$@"; }
  OWNER=$(id -un)
fi

if [ "${1:-}" = "stop" ]; then
  as_pg "$BIN/pg_ctl" -D "$PGDATA" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  log "stopped"
  exit 0
fi

mkdir -p .run
as_pg test -x "$PWD/.run" || die "$OWNER cannot enter $PWD/.run (a parent directory is not world-searchable)"

# Unix socket in the data dir when its path fits (sun_path is 108 bytes).
SOCKDIR=$PGDATA
if [ $(( ${#SOCKDIR} + 20 )) -gt 100 ]; then SOCKDIR=/tmp; fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  log "initdb in $PGDATA ($BIN)"
  rm -rf "$PGDATA"
  mkdir -p "$PGDATA"
  chown "$OWNER" "$PGDATA"
  chmod 700 "$PGDATA"
  as_pg "$BIN/initdb" -D "$PGDATA" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >"$PGDATA.initdb.log" 2>&1 \
    || { cat "$PGDATA.initdb.log" >&2; die "initdb failed"; }
  rm -f "$PGDATA.initdb.log"
fi

# Settings of this cluster (rewritten each run: the clone may have moved).
as_pg tee "$PGDATA/conf.d-hub.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCKDIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
grep -q "^include_if_exists = 'conf.d-hub.conf'" "$PGDATA/postgresql.conf" \
  || echo "include_if_exists = 'conf.d-hub.conf'" | as_pg tee -a "$PGDATA/postgresql.conf" >/dev/null

if as_pg "$BIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  log "already running ($PGDATA)"
else
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "port $PORT is taken by another server; set HUB_PG_PORT"
  fi
  log "starting on 127.0.0.1:$PORT"
  as_pg "$BIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 start >/dev/null \
    || { tail -n 30 "$PGDATA/server.log" >&2 || true; die "pg_ctl start failed"; }
fi

psql_admin() { as_pg "$BIN/psql" -h "$SOCKDIR" -p "$PORT" -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1 "$@"; }

psql_admin <<'EOF'
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hub') THEN
    CREATE ROLE hub LOGIN CREATEDB PASSWORD 'hub';
  ELSE
    ALTER ROLE hub LOGIN CREATEDB PASSWORD 'hub';
  END IF;
END
$$;
SELECT 'CREATE DATABASE hub OWNER hub' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'hub')
\gexec
EOF

PGPASSWORD=hub "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U hub -d hub -qAtX -c 'SELECT 1' >/dev/null \
  || die "cannot log in as hub over TCP"
log "ready: role/db hub on 127.0.0.1:$PORT"
echo "$URL"
