#!/usr/bin/env bash
# Install (when absent) and start the servers the hub needs: RabbitMQ and Redis.
# Idempotent: a server that already answers is left alone. Uses Debian packages
# as root; where a Docker engine answers instead, `docker compose up -d` is used.
set -euo pipefail
cd "$(dirname "$0")/.."

AMQP_PORT=${HUB_AMQP_PORT:-5672}
REDIS_PORT=${HUB_REDIS_PORT:-6379}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

need_apt=()
command -v rabbitmq-server >/dev/null 2>&1 || need_apt+=(rabbitmq-server)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)

if [ ${#need_apt[@]} -gt 0 ]; then
  if port_open "$AMQP_PORT" && port_open "$REDIS_PORT"; then
    need_apt=()
  elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "services: installing ${need_apt[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  elif command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    echo "services: starting rabbitmq and redis with docker compose"
    docker compose up -d rabbitmq redis
  else
    echo "services: need ${need_apt[*]}: run as root on Debian, or start them yourself" >&2
    exit 1
  fi
fi

if ! port_open "$REDIS_PORT"; then
  echo "services: starting redis on $REDIS_PORT"
  mkdir -p .run/redis
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes \
    --dir "$PWD/.run/redis" --appendonly yes --save "" \
    --logfile "$PWD/.run/redis/redis.log" --pidfile "$PWD/.run/redis/redis.pid"
fi

if ! port_open "$AMQP_PORT" && command -v rabbitmqctl >/dev/null 2>&1 \
    && timeout 20 rabbitmqctl -q ping >/dev/null 2>&1; then
  # The node runs but its app was stopped (e.g. an interrupted broker-restart test).
  echo "services: rabbitmq node is up with its app stopped; starting the app"
  timeout 60 rabbitmqctl -q start_app >/dev/null 2>&1 || true
fi

if ! port_open "$AMQP_PORT"; then
  echo "services: starting rabbitmq on $AMQP_PORT"
  # The Debian wrapper drops to the rabbitmq user; -detached returns at once.
  RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$AMQP_PORT rabbitmq-server -detached
fi

for _ in $(seq 1 120); do
  port_open "$REDIS_PORT" && break; sleep 0.5
done
port_open "$REDIS_PORT" || { echo "services: redis did not start" >&2; exit 1; }
if command -v rabbitmqctl >/dev/null 2>&1; then
  rabbitmqctl -q await_startup --timeout 120 >/dev/null 2>&1 || true
fi
for _ in $(seq 1 240); do
  port_open "$AMQP_PORT" && break; sleep 0.5
done
port_open "$AMQP_PORT" || { echo "services: rabbitmq did not start" >&2; exit 1; }

# An open port is not a working broker: a node can take the TCP connection and never
# answer the AMQP handshake (seen on RabbitMQ 3.10 after heavy queue churn), and then
# every test hangs until the CI guard kills it. Ask for the Connection.Start frame.
amqp_answers() {
  timeout 6 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" && printf "AMQP\x00\x00\x09\x01" >&3 \
    && head -c 1 <&3 | od -An -tx1 | grep -q 01' _ "$AMQP_PORT" 2>/dev/null
}
if ! amqp_answers; then
  echo "services: rabbitmq takes connections but does not answer the AMQP handshake;" \
       "restarting its app" >&2
  timeout 60 rabbitmqctl -q stop_app >/dev/null 2>&1 || true
  timeout 120 rabbitmqctl -q start_app >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do amqp_answers && break; sleep 1; done
  amqp_answers || { echo "services: rabbitmq on :$AMQP_PORT still does not answer AMQP;" \
    "restart it (as root: pkill -9 beam.smp; rm -rf /var/lib/rabbitmq/mnesia/rabbit@*;" \
    "make services: this drops the test broker's queues)" >&2; exit 1; }
fi
echo "services: rabbitmq :$AMQP_PORT and redis :$REDIS_PORT are up"
