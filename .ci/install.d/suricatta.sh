#!/usr/bin/env bash
# Extracts SWUpdate 2022.12 (suricatta, the C hawkBit DDI client) and its libraries from Debian's
# packages into /var/cache/pocketses-ci/swupdate, the peer of the fleet benchmark
# (bench/fleet.sh, docs/performance.md). Nothing is installed: swupdate's postinst would enable
# a service. Run it with LD_LIBRARY_PATH=$dest/usr/lib/x86_64-linux-gnu (real-servers.md).
# Idempotent: does nothing when swupdate is already there and starts.
set -euo pipefail
dest=/var/cache/pocketses-ci/swupdate
pkgs=(swupdate libarchive13 libb2-1 libconfig9 libgpiod2 liblua5.3-0 librsync2 libswupdate0.1
  liburiparser1 libwebsockets17 libzck1)
runs() {
  LD_LIBRARY_PATH="$dest/usr/lib/$(uname -m)-linux-gnu" "$dest/usr/bin/swupdate" -h >/dev/null 2>&1
}
if [ -x "$dest/usr/bin/swupdate" ] && runs; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download "${pkgs[@]}" >/dev/null 2>&1; then
  apt-get update -qq
  apt-get download "${pkgs[@]}" >/dev/null
fi
rm -rf "$dest"
mkdir -p "$dest"
for deb in ./*.deb; do
  dpkg-deb -x "$deb" "$dest"
done
runs
echo "ci: swupdate (suricatta) extracted to $dest/usr/bin/swupdate"
