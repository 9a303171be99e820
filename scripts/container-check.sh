#!/usr/bin/env bash
# Verifies the Dockerfile and docker-compose.yml on a machine without a
# Docker engine (make container-check). scripts/containercheck reads the
# Dockerfile and emulates it: debootstrap rootfs folders stand in for the
# FROM images, RUN lines run in a chroot on overlayfs layers, COPY honours
# .dockerignore, then the image's ENTRYPOINT + CMD is started as its USER,
# health-checked with its HEALTHCHECK and used through the API. The Compose
# file is checked offline. Not part of `make test` or CI: it needs root and
# the Debian archive, and a cold run takes several minutes.
#
# Base images, layers and logs are kept in ${IMGD_CONTAINER_CACHE:-$HOME/.cache/imgd-container},
# so a rerun rebuilds only the layers whose inputs changed.
# Usage: scripts/container-check.sh [-static] [-build-arg NAME=value]...
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
  echo "container-check: needs root (chroot, mounts, debootstrap)" >&2
  exit 2
fi
need=()
command -v debootstrap >/dev/null || need+=(debootstrap)
python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
if [ ${#need[@]} -gt 0 ]; then
  echo "container-check: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
GO="${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}"
export GOTOOLCHAIN=local
exec "$GO" run ./scripts/containercheck -cache "${IMGD_CONTAINER_CACHE:-$HOME/.cache/imgd-container}" "$@"
