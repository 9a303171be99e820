#!/usr/bin/env bash
# Installs the Debian packages imgd needs when they are missing:
#   build/run: libvips-dev (libvips 8.14 and headers), pkg-config, gcc,
#              liblcms2-dev (internal/vips/icc.c calls little-cms directly)
#   tests/bench: libvips-tools (vipsthumbnail), python3-pil (Pillow), libjpeg-dev,
#              python3-yaml (scripts/containercheck reads docker-compose.yml)
# Usage: scripts/deps.sh [run|test|bench]
set -euo pipefail
need=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for p in libvips-dev pkg-config gcc libjpeg62-turbo-dev liblcms2-dev; do have_pkg "$p" || need+=("$p"); done
case "${1:-run}" in
  test|bench) for p in libvips-tools python3-pil python3-yaml; do have_pkg "$p" || need+=("$p"); done ;;
esac
if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  have_pkg golang-go || need+=(golang-go)
fi
[ ${#need[@]} -eq 0 ] && exit 0
echo "deps: installing ${need[*]}" >&2
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
