#!/usr/bin/env bash
# Says which local service is up and, for one that is not, where its log is.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${AFTERSALES_STATE_DIR:-$ROOT/.local}"
check() { if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then echo "$1: up on 127.0.0.1:$2"; else echo "$1: DOWN (log: $3)"; bad=1; fi; }
# shellcheck source=pg-location.sh
. "$(dirname "${BASH_SOURCE[0]}")/pg-location.sh"
pg_location
bad=0
check postgres "${PG_PORT:-5432}" "$PG_LOG"
check redis "${REDIS_PORT:-6379}" "$STATE/logs/redis.log"
check kafka "${KAFKA_PORT:-9092}" "$STATE/logs/kafka/server.log"
exit $bad
