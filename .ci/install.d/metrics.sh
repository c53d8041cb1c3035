#!/usr/bin/env bash
# Extracts promtool from Debian's `prometheus` package into /var/cache/pocketses-ci/prometheus,
# for tests/metrics_promtool.rs. The package is not installed: its postinst would start a server.
# Idempotent: does nothing when promtool is already there.
set -euo pipefail
dest=/var/cache/pocketses-ci/prometheus
if [ -x "$dest/usr/bin/promtool" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
if ! apt-get download prometheus >/dev/null 2>&1; then
  apt-get update -qq
  apt-get download prometheus >/dev/null
fi
mkdir -p "$dest"
dpkg-deb -x prometheus_*.deb "$dest"
"$dest/usr/bin/promtool" --version >/dev/null
echo "ci: promtool extracted to $dest/usr/bin/promtool"
