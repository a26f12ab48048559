#!/usr/bin/env bash
# Stops what up.sh started (data is kept under .local/; delete it for a clean slate).
# `down.sh kafka|postgres|redis` stops only that one (restart.sh uses it).
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${AFTERSALES_STATE_DIR:-$ROOT/.local}"
only="${1:-all}"
case "$only" in all|kafka|postgres|redis) ;; *) echo "usage: down.sh [kafka|postgres|redis]" >&2; exit 2 ;; esac
wanted() { [ "$only" = all ] || [ "$only" = "$1" ]; }
# shellcheck source=pg-location.sh
. "$(dirname "${BASH_SOURCE[0]}")/pg-location.sh"
pg_location
if wanted kafka && [ -f "$STATE/kafka/kafka.pid" ] && kill -0 "$(cat "$STATE/kafka/kafka.pid")" 2>/dev/null; then
  pid="$(cat "$STATE/kafka/kafka.pid")"; kill "$pid"
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null; echo "[down] kafka stopped"
fi
wanted kafka && rm -f "$STATE/kafka/kafka.pid"
if wanted redis && [ -f "$STATE/redis/redis.pid" ]; then
  kill "$(cat "$STATE/redis/redis.pid")" 2>/dev/null && echo "[down] redis stopped"; rm -f "$STATE/redis/redis.pid"
fi
bindir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
if wanted postgres && [ -n "$bindir" ] && [ -f "$PG_DATA/PG_VERSION" ]; then
  su postgres -s /bin/sh -c "'$bindir/pg_ctl' -D '$PG_DATA' -m fast -w stop" >/dev/null 2>&1 && echo "[down] postgres stopped"
fi
exit 0
