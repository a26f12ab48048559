#!/usr/bin/env bash
# Regenerates the hash-pinned lockfiles from pyproject.toml (run after changing a dependency):
#   requirements/runtime.lock  what a worker image installs (deploy/docker/Dockerfile)
#   requirements/dev.lock      runtime + test and lint tools (./dev)
#   requirements/build.lock    pip, setuptools and wheel, so the project's own build is pinned too
# Universal: one file serves every platform and Python 3.11-3.12 through environment markers.
# `lock.sh --check` (run by ./dev test) fails when a lockfile no longer matches pyproject.toml:
# it resolves again, preferring the versions already locked, and compares.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
uv="${UV:-.venv/bin/uv}"
common=(--universal --python-version 3.11 --generate-hashes --quiet --no-header)
compile() {  # compile <lock name> <uv pip compile inputs...>
  local name="$1"; shift
  local out="requirements/$name.lock"
  if [ "${check:-0}" = 1 ]; then
    local fresh; fresh="$(mktemp)"; cp "$out" "$fresh"
    "$uv" pip compile "${common[@]}" "$@" -o "$fresh"
    if ! diff -u "$out" "$fresh" >&2; then
      rm -f "$fresh"; echo "[lock] $out does not match pyproject.toml: run requirements/lock.sh" >&2; exit 1
    fi
    rm -f "$fresh"
  else
    "$uv" pip compile "${common[@]}" "$@" -o "$out"
  fi
}
check=0; [ "${1:-}" = --check ] && check=1
compile build requirements/build.in
compile runtime pyproject.toml
compile dev pyproject.toml --extra dev
if [ "$check" = 1 ]; then echo "[lock] lockfiles match pyproject.toml"; else echo "[lock] requirements/{build,runtime,dev}.lock written"; fi
