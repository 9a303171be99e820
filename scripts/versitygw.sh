#!/usr/bin/env bash
# Installs versitygw, the S3-compatible server the s3blob tests (and the
# scale-out tests) start through internal/blob/s3test, into
# ${IMGD_TOOLS_DIR:-$HOME/.cache/imgd-tools} when it is missing there.
# A cold build takes a few minutes, so the binary is kept outside the repo
# and reused. IMGD_VERSITYGW names another binary and skips the build.
set -euo pipefail
VERSION=v1.8.0
MODULE=github.com/versity/versitygw
if [ -n "${IMGD_VERSITYGW:-}" ] && [ -x "${IMGD_VERSITYGW}" ]; then exit 0; fi
dir="${IMGD_TOOLS_DIR:-$HOME/.cache/imgd-tools}"
bin="$dir/versitygw"
stamp="$dir/versitygw.version" # the binary reports no version of its own
if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$VERSION" ]; then exit 0; fi

GO="${GO:-$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)}"
mkdir -p "$dir"
echo "versitygw.sh: building $MODULE@$VERSION into $dir (a few minutes the first time)" >&2
start=$(date +%s)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# go install mod@version, and where a proxy refuses that, a throwaway module.
if ! GOBIN="$tmp" "$GO" install "$MODULE/cmd/versitygw@$VERSION"; then
  echo "versitygw.sh: go install refused; building from a temporary module" >&2
  (
    cd "$tmp"
    "$GO" mod init imgd-tools/versitygw >/dev/null 2>&1
    "$GO" get "$MODULE/cmd/versitygw@$VERSION"
    "$GO" build -o "$tmp/versitygw" "$MODULE/cmd/versitygw"
  )
fi
# Moved into place whole, so an interrupted build never leaves half a binary.
mv -f "$tmp/versitygw" "$bin.new"
mv -f "$bin.new" "$bin"
echo "$VERSION" >"$stamp"
echo "versitygw.sh: installed $bin in $(( $(date +%s) - start ))s" >&2
