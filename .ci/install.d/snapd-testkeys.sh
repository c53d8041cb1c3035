#!/usr/bin/env bash
# The real-remodel VM phase (tests/vm/brand.sh, docs/remodel.md): snapd 2.57 built with
# snapd's own test keys (`-tags "withtestkeys nosecboot"`: it also trusts the test root
# "testrootorg"), snapd's fake store and fake serial vault, and tools/testbrand, all from
# Debian's golang-github-snapcore-snapd-dev source, offline. Cached in $OUT, keyed by the snapd
# source version and tools/testbrand; idempotent (a second run only checks the key).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${POCKETSES_SNAPD_TESTKEYS:-/var/cache/pocketses-ci/snapd-testkeys}
SRC=/usr/share/gocode/src/github.com/snapcore/snapd
command -v go >/dev/null || { echo "snapd-testkeys: go is missing (golang-go in .ci/apt-packages)" >&2; exit 1; }
[ -d "$SRC/tests/lib/fakestore" ] ||
  { echo "snapd-testkeys: $SRC is missing (golang-github-snapcore-snapd-dev in .ci/apt-packages)" >&2; exit 1; }
key="$(dpkg-query -W -f='${Version}' golang-github-snapcore-snapd-dev) $(sha256sum "$repo/tools/testbrand/main.go" | cut -c1-16)"
if [ "$(cat "$OUT/key" 2>/dev/null)" = "$key" ] &&
  [ -x "$OUT/bin/snapd" ] && [ -x "$OUT/bin/fakestore" ] && [ -x "$OUT/bin/fakedevicesvc" ] && [ -x "$OUT/bin/testbrand" ]; then
  echo "snapd-testkeys: cached in $OUT ($key)"
  exit 0
fi
t0=$SECONDS
mkdir -p "$OUT/bin" "$OUT/gocache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GO111MODULE=off GOPATH="$work:/usr/share/gocode" CGO_ENABLED=0 GOFLAGS= GOCACHE="$OUT/gocache"
cd "$SRC"
# nosecboot: the secboot package needs Go modules Debian does not ship; classic has no use for it.
nice go build -o "$OUT/bin/snapd.tmp" -tags "withtestkeys nosecboot" ./cmd/snapd
nice go build -o "$OUT/bin/fakestore.tmp" ./tests/lib/fakestore/cmd/fakestore
nice go build -o "$OUT/bin/fakedevicesvc.tmp" ./tests/lib/fakedevicesvc
mkdir -p "$work/src/testbrand"
cp "$repo/tools/testbrand/main.go" "$work/src/testbrand/"
(cd "$work/src/testbrand" && nice go build -o "$OUT/bin/testbrand.tmp" .)
for b in snapd fakestore fakedevicesvc testbrand; do mv "$OUT/bin/$b.tmp" "$OUT/bin/$b"; done
echo "$key" >"$OUT/key"
echo "snapd-testkeys: built snapd, fakestore, fakedevicesvc, testbrand in $((SECONDS - t0))s"
