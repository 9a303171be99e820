#!/usr/bin/env bash
# Installs Debian's chromium when no browser is found, for the web page tests
# in internal/web (headless, driven by chromedp). IMGD_CHROMIUM names another
# browser binary and skips the install.
set -euo pipefail
if [ -n "${IMGD_CHROMIUM:-}" ] && [ -x "${IMGD_CHROMIUM}" ]; then exit 0; fi
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi
echo "chromium.sh: installing chromium" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
