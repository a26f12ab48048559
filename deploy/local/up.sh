#!/usr/bin/env bash
# Starts the local stack on loopback without Docker, idempotently:
#   Kafka 3.9 (KRaft, jars from Maven Central), PostgreSQL and Redis (Debian packages).
# Downloads and data live under .local/ (git-ignored); a second run reuses them.
#   up.sh                     all three, then writes .local/env
#   up.sh postgres|redis|kafka  only that one (the environment file is left as it is)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
HERE="$ROOT/deploy/local"
STATE="${AFTERSALES_STATE_DIR:-$ROOT/.local}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
PG_PORT="${PG_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
PG_DB="${PG_DB:-aftersales}"
PG_USER="${PG_USER:-aftersales}"
PG_PASSWORD="${PG_PASSWORD:-aftersales}"
only="${1:-all}"
case "$only" in all|kafka|postgres|redis) ;; *) echo "usage: up.sh [postgres|redis|kafka]" >&2; exit 2 ;; esac
wanted() { [ "$only" = all ] || [ "$only" = "$1" ]; }
mkdir -p "$STATE/logs"
# shellcheck source=pg-location.sh
. "$HERE/pg-location.sh"

log() { printf '[up] %s\n' "$*"; }
fail() { printf '[up] FAILED: %s\n' "$*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# secret NAME: a random secret in $STATE/NAME (mode 0600), made once and kept (never committed)
secret() {
  [ -s "$STATE/$1" ] || (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$STATE/$1")
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"; DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$STATE/logs/apt.log" 2>&1 || fail "apt-get update (see $STATE/logs/apt.log)"
    apt_updated=1
  fi
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >>"$STATE/logs/apt.log" 2>&1 \
    || fail "apt-get install $* (see $STATE/logs/apt.log)"
}

# ---------------------------------------------------------------- PostgreSQL
start_postgres() {
  local bindir
  bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
  if [ -z "$bindir" ] || [ ! -x "$bindir/postgres" ]; then
    apt_install postgresql
    bindir="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
  fi
  pg_location
  local data="$PG_DATA" pglog="$PG_LOG"
  if [ "$PG_OUTSIDE" = 1 ]; then
    log "the postgres user cannot enter $STATE (a folder above it is closed to other users),"
    log "so PostgreSQL's data and log are in $(dirname "$data") (delete it with .local for a clean slate)"
    mkdir -p "$(dirname "$data")"; chown postgres:postgres "$(dirname "$data")"
  fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initdb $data"
    mkdir -p "$data"; chown postgres:postgres "$data"; chmod 700 "$data"
    su postgres -s /bin/sh -c "'$bindir/initdb' -D '$data' -U postgres -A trust -E UTF8 --locale=C.UTF-8" \
      >"$STATE/logs/initdb.log" 2>&1 || fail "initdb as the postgres user, in $data (see $STATE/logs/initdb.log)"
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$data'
max_connections = 200
shared_buffers = 256MB
synchronous_commit = on
fsync = on
CONF
  fi
  touch "$pglog"; chown postgres:postgres "$pglog"
  if su postgres -s /bin/sh -c "'$bindir/pg_ctl' -D '$data' status" >/dev/null 2>&1; then
    log "postgres already running on 127.0.0.1:$PG_PORT"
  else
    port_open "$PG_PORT" && fail "port $PG_PORT is taken by another process; set PG_PORT"
    su postgres -s /bin/sh -c "'$bindir/pg_ctl' -D '$data' -l '$pglog' -w -t 60 start" \
      >/dev/null || fail "postgres did not start (see $pglog)"
    log "postgres started on 127.0.0.1:$PG_PORT"
  fi
  local psql=("$bindir/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  if [ "$("${psql[@]}" -c "select 1 from pg_roles where rolname='$PG_USER'")" != 1 ]; then
    "${psql[@]}" -c "create role $PG_USER login password '$PG_PASSWORD'" >/dev/null
  fi
  # what-if replays and rebuild tests make scratch databases of their own (services/replay)
  "${psql[@]}" -c "alter role $PG_USER createdb" >/dev/null
  if [ "$("${psql[@]}" -c "select 1 from pg_database where datname='$PG_DB'")" != 1 ]; then
    "${psql[@]}" -c "create database $PG_DB owner $PG_USER" >/dev/null
    log "database $PG_DB created"
  fi
}

# ---------------------------------------------------------------- Redis
start_redis() {
  command -v redis-server >/dev/null || apt_install redis-server
  if port_open "$REDIS_PORT"; then
    log "redis already listening on 127.0.0.1:$REDIS_PORT"; return
  fi
  mkdir -p "$STATE/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --dir "$STATE/redis" \
    --pidfile "$STATE/redis/redis.pid" --logfile "$STATE/logs/redis.log" --save "" --appendonly no \
    || fail "redis did not start (see $STATE/logs/redis.log)"
  for _ in $(seq 50); do port_open "$REDIS_PORT" && break; sleep 0.1; done
  port_open "$REDIS_PORT" || fail "redis not listening (see $STATE/logs/redis.log)"
  log "redis started on 127.0.0.1:$REDIS_PORT"
}

# ---------------------------------------------------------------- Kafka
start_kafka() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  local home="$STATE/kafka"
  mkdir -p "$home"
  if [ ! -f "$home/libs/.complete" ]; then
    command -v mvn >/dev/null || apt_install maven
    log "fetching Kafka jars from Maven Central (first run only)"
    rm -rf "$home/libs"
    mvn -q -f "$HERE/pom.xml" dependency:copy-dependencies -DoutputDirectory="$home/libs" \
      -DincludeScope=runtime -Dmaven.repo.local="$STATE/m2" >"$STATE/logs/maven.log" 2>&1 \
      || fail "maven could not fetch the Kafka jars (see $STATE/logs/maven.log)"
    touch "$home/libs/.complete"
  fi
  secret kafka-admin-password
  (umask 077; sed -e "s#@KAFKA_PORT@#$KAFKA_PORT#g" -e "s#@CONTROLLER_PORT@#$CONTROLLER_PORT#g" \
      -e "s#@DATA_DIR@#$home#g" -e "s#@ADMIN_PASSWORD@#$(cat "$STATE/kafka-admin-password")#g" \
      "$HERE/server.properties.in" >"$home/server.properties")
  local jvm=(java -Xms512m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
             -XX:InitiatingHeapOccupancyPercent=35 -Djava.awt.headless=true
             -Dkafka.logs.dir="$STATE/logs/kafka" -Dlog4j.configuration="file:$HERE/log4j.properties"
             -cp "$home/libs/*")
  mkdir -p "$STATE/logs/kafka"
  if [ ! -f "$home/kafka-data/meta.properties" ]; then
    local cluster_id
    cluster_id="$("${jvm[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
    "${jvm[@]}" kafka.tools.StorageTool format -g -t "$cluster_id" -c "$home/server.properties" \
      >"$STATE/logs/kafka-format.log" 2>&1 || fail "kafka storage format (see $STATE/logs/kafka-format.log)"
    log "kafka storage formatted (cluster $cluster_id)"
  fi
  if [ -f "$home/kafka.pid" ] && kill -0 "$(cat "$home/kafka.pid")" 2>/dev/null \
      && ! cmp -s "$home/server.properties" "$home/server.properties.running"; then
    log "kafka runs with an older configuration (before SASL and ACLs, say): restarting it"
    bash "$HERE/down.sh" kafka >/dev/null
  fi
  if [ -f "$home/kafka.pid" ] && kill -0 "$(cat "$home/kafka.pid")" 2>/dev/null; then
    log "kafka already running on 127.0.0.1:$KAFKA_PORT"
  else
    cp "$home/server.properties" "$home/server.properties.running"
    port_open "$KAFKA_PORT" && fail "port $KAFKA_PORT is taken by another process; set KAFKA_PORT"
    # its own session: the broker outlives whoever started it (a test run, the chaos run's restart)
    setsid nohup "${jvm[@]}" kafka.Kafka "$home/server.properties" >"$STATE/logs/kafka-stdout.log" 2>&1 &
    echo $! >"$home/kafka.pid"
    log "kafka starting on 127.0.0.1:$KAFKA_PORT (pid $(cat "$home/kafka.pid"))"
  fi
  # a broker that has hosted many runs' topics recovers their logs first (seen: 90 s for ~260 partitions)
  local wait_s="${KAFKA_START_TIMEOUT:-240}"
  for _ in $(seq $((wait_s * 5))); do port_open "$KAFKA_PORT" && return;
    kill -0 "$(cat "$home/kafka.pid")" 2>/dev/null || fail "kafka exited (see $STATE/logs/kafka-stdout.log and $STATE/logs/kafka/server.log)"
    sleep 0.2; done
  fail "kafka not listening after $wait_s s (see $STATE/logs/kafka/server.log; KAFKA_START_TIMEOUT raises the wait)"
}

wanted postgres && start_postgres
wanted redis && start_redis
wanted kafka && start_kafka
[ "$only" = all ] || exit 0
# the payment channel's signing key: made once per checkout (secret, above), never committed, kept
# across restarts (results signed before a restart must still verify after it)
secret payment-signing-key
cat >"$STATE/env" <<ENV
export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT
export DATABASE_URL=postgresql+asyncpg://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
export AFTERSALES_PAYMENT_SIGNING_KEYS='{"local-1": "$(cat "$STATE/payment-signing-key")"}'
export AFTERSALES_PAYMENT_SIGNING_KEY_ID=local-1
# tools (init, tests, demo, chaos) sign in to Kafka as the broker's admin; the worker processes
# they start sign in as their own service, with the password from the credentials file
export AFTERSALES_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT
export AFTERSALES_KAFKA_SASL_MECHANISM=PLAIN
export AFTERSALES_KAFKA_USERNAME=admin
export AFTERSALES_KAFKA_PASSWORD=$(cat "$STATE/kafka-admin-password")
export AFTERSALES_KAFKA_CREDENTIALS_FILE=$STATE/kafka-credentials.json
ENV
log "stack up; environment in $STATE/env"
