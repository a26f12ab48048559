#!/usr/bin/env bash
# Restarts one service of the local stack (the chaos run's broker and database restarts):
# stops it, optionally stays down for a few seconds, then up.sh starts whatever is missing.
#   restart.sh kafka|postgres|redis [seconds down]
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
service="${1:?usage: restart.sh kafka|postgres|redis [seconds down]}"
bash "$HERE/down.sh" "$service"
sleep "${2:-0}"
out="$(mktemp)"
if ! bash "$HERE/up.sh" >"$out" 2>&1; then
  cat "$out" >&2; rm -f "$out"   # say why the service did not come back
  exit 1
fi
rm -f "$out"
echo "[restart] $service is back"
