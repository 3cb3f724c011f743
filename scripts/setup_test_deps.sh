#!/usr/bin/env bash
# Install what the browser end-to-end tests need: Debian's `chromium` (driven by the playwright python package,
# which is pinned in requirements.txt). Never runs `playwright install` (no browser downloads).
# Idempotent: does nothing when chromium is already present. Set MDI_SKIP_BROWSER_SETUP=1 to skip.
set -euo pipefail

CHROMIUM=${MDI_CHROMIUM:-/usr/bin/chromium}
log() { printf '\033[1m[setup-test-deps]\033[0m %s\n' "$*" >&2; }

if [ "${MDI_SKIP_BROWSER_SETUP:-0}" = 1 ]; then
  log "MDI_SKIP_BROWSER_SETUP=1: not installing chromium"; exit 0
fi
if [ -x "$CHROMIUM" ]; then
  log "chromium present: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"; exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  log "apt-get not available: install chromium yourself (browser tests will be skipped)"; exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    log "not root and no sudo: cannot install chromium (browser tests will be skipped)"; exit 0
  fi
fi
log "installing Debian chromium via apt-get"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
log "installed: $("$CHROMIUM" --version 2>/dev/null || echo unknown)"
