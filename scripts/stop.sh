#!/usr/bin/env bash
# Stop the servers this project started: redis (scripts/services.sh, pidfile
# .run/redis/redis.pid), rabbitmq (`rabbitmqctl stop`) and postgres
# (scripts/postgres.sh, cluster .run/pg). A server that is not running is skipped.
#
#   scripts/stop.sh                  # all three
#   scripts/stop.sh postgres redis   # only these
set -uo pipefail
cd "$(dirname "$0")/.."

rc=0
log() { echo "stop: $*"; }

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }

stop_redis() {
  local pidfile=.run/redis/redis.pid pid
  if [ ! -s "$pidfile" ]; then log "redis: not started by this project"; return 0; fi
  pid=$(tr -dc '0-9' <"$pidfile")
  if ! alive "$pid" || ! grep -qa redis "/proc/$pid/cmdline" 2>/dev/null; then
    log "redis: not running (stale pidfile)"; rm -f "$pidfile"; return 0
  fi
  log "redis: stopping pid $pid"
  kill -TERM "$pid"
  for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
  if alive "$pid"; then log "redis: pid $pid did not exit" >&2; return 1; fi
  rm -f "$pidfile"
}

stop_rabbitmq() {
  if ! command -v rabbitmqctl >/dev/null 2>&1; then log "rabbitmq: not installed"; return 0; fi
  if ! pgrep -u rabbitmq -f beam >/dev/null 2>&1 && ! pgrep -f 'beam.*-s rabbit' >/dev/null 2>&1; then
    log "rabbitmq: not running"; return 0
  fi
  log "rabbitmq: rabbitmqctl stop"
  if ! timeout 120 rabbitmqctl -q stop >/dev/null 2>&1; then
    log "rabbitmq: rabbitmqctl stop failed" >&2; return 1
  fi
}

stop_postgres() {
  local pgdata=$PWD/.run/pg bin
  if [ ! -s "$pgdata/PG_VERSION" ]; then log "postgres: no cluster in .run/pg"; return 0; fi
  if [ ! -s "$pgdata/postmaster.pid" ]; then log "postgres: not running"; return 0; fi
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -x "$bin/pg_ctl" ] || bin=$(dirname "$(command -v pg_ctl)")
  local as=()
  [ "$(id -u)" -eq 0 ] && as=(runuser -u "$(stat -c %U "$pgdata")" --)
  if ! "${as[@]}" "$bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; then
    log "postgres: not running"; return 0
  fi
  log "postgres: pg_ctl stop (.run/pg)"
  "${as[@]}" "$bin/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop >/dev/null || return 1
}

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(redis rabbitmq postgres)
for t in "${targets[@]}"; do
  case $t in
    redis) stop_redis || rc=1 ;;
    rabbitmq) stop_rabbitmq || rc=1 ;;
    postgres) stop_postgres || rc=1 ;;
    *) echo "stop: unknown service '$t' (redis, rabbitmq, postgres)" >&2; rc=2 ;;
  esac
done
exit $rc
