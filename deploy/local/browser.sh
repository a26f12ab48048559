#!/usr/bin/env bash
# Debian's Chromium for the back office's browser tests (Playwright drives it; it downloads nothing).
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
echo "[browser] apt-get install chromium"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
  || { $SUDO apt-get update -q >/dev/null && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }
echo "[browser] $(/usr/bin/chromium --version)"
