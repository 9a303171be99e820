#!/usr/bin/env bash
# Downloads and unpacks the Debian packages listed in sources.tsv into
# $IMGD_ORIENT_CACHE (default ~/.cache/imgd-orient) for the photo model's
# training, and extracts GCompris' pictures from its resource files.
# Run from the repository root; needs apt-get and dpkg-deb (Debian).
set -euo pipefail
cache=${IMGD_ORIENT_CACHE:-$HOME/.cache/imgd-orient}
mkdir -p "$cache/debs" "$cache/x"
cd "$(dirname "$0")/../.."
pkgs=$(grep -v '^#' cmd/imgd-train-orientation/sources.tsv | cut -f2 | sort -u)
for p in $pkgs; do
    if [ ! -d "$cache/x/$p" ]; then
        (cd "$cache/debs" && apt-get download "$p")
        dpkg-deb -x "$cache"/debs/"$p"_*.deb "$cache/x/$p"
    fi
done
go run ./cmd/imgd-train-orientation -cache "$cache" -carve "$cache/x/gcompris-qt-data/usr/share/gcompris-qt/rcc"
