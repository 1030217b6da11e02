#!/usr/bin/env bash
# A 3-node RabbitMQ cluster on this one machine, for tests/cluster (`make test-cluster`).
#   bash scripts/rabbit_cluster.sh start   # idempotent: nodes already up are kept
#   bash scripts/rabbit_cluster.sh status  # one line per node: name, port, running or not
#   bash scripts/rabbit_cluster.sh stop    # stops the three nodes, removes .run/cluster
#   bash scripts/rabbit_cluster.sh urls    # the nodes' AMQP URLs, comma-separated
# Nodes rabbit1..3@localhost, AMQP on 127.0.0.1:5681-5683 (HUB_CLUSTER_PORT_BASE+1..3),
# distribution on 25681-25683, no plugins (no management), their own data and logs under
# .run/cluster/ and their own Erlang cookie there (HOME points at it), so the shared broker
# (rabbit@<host> on 5672) is never touched: every rabbitmqctl call names its node (-n).
# Runs the Debian package's /usr/lib/rabbitmq/bin scripts directly as the current user.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_PORT=${HUB_CLUSTER_PORT_BASE:-5680}
NODES=(1 2 3)
DIR="$PWD/.run/cluster"
BIN=${RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}
export HOME="$DIR/home"  # .erlang.cookie of the cluster (rabbitmqctl reads it too)

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
node() { echo "rabbit$1@localhost"; }
ctl() { local n=$1; shift; timeout 120 "$BIN/rabbitmqctl" -q -n "$(node "$n")" "$@"; }
running() { port_open $((BASE_PORT + $1)) && ctl "$1" ping >/dev/null 2>&1; }

start_node() {
  local n=$1 port=$((BASE_PORT + $1))
  if running "$n"; then return 0; fi
  if port_open "$port"; then
    echo "rabbit_cluster: port $port is taken by something else" >&2; return 1
  fi
  mkdir -p "$DIR/node$n/mnesia" "$DIR/node$n/log"
  printf '[].\n' >"$DIR/node$n/enabled_plugins"
  : >"$DIR/node$n/rabbitmq.conf"
  env RABBITMQ_NODENAME="$(node "$n")" RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="$port" RABBITMQ_DIST_PORT=$((port + 20000)) \
    RABBITMQ_MNESIA_BASE="$DIR/node$n/mnesia" RABBITMQ_LOG_BASE="$DIR/node$n/log" \
    RABBITMQ_PID_FILE="$DIR/node$n/pid" RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/node$n/enabled_plugins" \
    RABBITMQ_CONFIG_FILE="$DIR/node$n/rabbitmq.conf" RABBITMQ_CONF_ENV_FILE=/dev/null \
    RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="+S 1:1 +A 4" \
    "$BIN/rabbitmq-server" >"$DIR/node$n/log/stdout.log" 2>&1 &
  disown
}

clustered() {  # node n sees all three nodes running
  local out
  out=$(ctl "$1" cluster_status --formatter json 2>/dev/null) || return 1
  for m in "${NODES[@]}"; do
    grep -q "\"running_nodes\":\[[^]]*\"$(node "$m")\"" <<<"$out" || return 1
  done
}

start() {
  mkdir -p "$HOME"
  if [ ! -s "$HOME/.erlang.cookie" ]; then
    (umask 077; head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$HOME/.erlang.cookie")
  fi
  chmod 400 "$HOME/.erlang.cookie"
  for n in "${NODES[@]}"; do start_node "$n"; done
  for n in "${NODES[@]}"; do  # the VM first answers ping, then the app starts
    for _ in $(seq 1 120); do ctl "$n" ping >/dev/null 2>&1 && break; sleep 0.5; done
    ctl "$n" await_startup --timeout 120 >/dev/null || {
      echo "rabbit_cluster: $(node "$n") did not start (see $DIR/node$n/log)" >&2; exit 1; }
  done
  for n in 2 3; do  # join the first node unless already its peer
    grep -q "$(node 1)" <<<"$(ctl "$n" cluster_status --formatter json 2>/dev/null)" \
      && continue
    { ctl "$n" stop_app && ctl "$n" reset && ctl "$n" join_cluster "$(node 1)" \
        && ctl "$n" start_app; } >>"$DIR/join.log" 2>&1 \
      || { echo "rabbit_cluster: $(node "$n") could not join (see $DIR/join.log)" >&2; exit 1; }
  done
  for _ in $(seq 1 60); do clustered 1 && break; sleep 1; done
  clustered 1 || { echo "rabbit_cluster: the nodes did not form a cluster" >&2; exit 1; }
  echo "rabbit_cluster: $(urls) clustered"
}

urls() {
  local out=()
  for n in "${NODES[@]}"; do out+=("amqp://guest:guest@127.0.0.1:$((BASE_PORT + n))/"); done
  (IFS=,; echo "${out[*]}")
}

status() {
  local rc=0
  for n in "${NODES[@]}"; do
    if running "$n"; then echo "$(node "$n") :$((BASE_PORT + n)) running"
    else echo "$(node "$n") :$((BASE_PORT + n)) down"; rc=1; fi
  done
  return $rc
}

stop() {
  for n in "${NODES[@]}"; do  # `stop` ends the node's Erlang VM (not only the app)
    if [ -d "$DIR" ] && ctl "$n" ping >/dev/null 2>&1; then ctl "$n" stop >/dev/null || true; fi
  done
  for n in "${NODES[@]}"; do  # a node that ignored stop: its own pid file only
    local pid
    pid=$(cat "$DIR/node$n/pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid" || true; fi
  done
  rm -rf "$DIR"
  echo "rabbit_cluster: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  urls) urls ;;
  *) echo "usage: $0 start|stop|status|urls" >&2; exit 2 ;;
esac
