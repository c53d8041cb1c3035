#!/usr/bin/env bash
# Extracts the metric stores the push tests write to (tests/support/stores.rs) from their Debian
# packages, without installing them: their maintainer scripts would start services.
#   victoria-metrics (1.79) -> /var/cache/pocketses-ci/victoria-metrics/usr/bin/victoria-metrics
#   influxdb (1.6)          -> /var/cache/pocketses-ci/influxdb/usr/bin/influxd
# Prometheus 2.42 comes from metrics.sh (/var/cache/pocketses-ci/prometheus/usr/bin/prometheus).
# Idempotent: a store whose binary is already there is left alone.
set -euo pipefail
root=/var/cache/pocketses-ci
extract() { # package, binary path inside the package
  local pkg=$1 bin=$2 dest=$root/$1
  if [ -x "$dest/$bin" ]; then
    return 0
  fi
  local work
  work=$(mktemp -d)
  (
    cd "$work"
    if ! apt-get download "$pkg" >/dev/null 2>&1; then
      apt-get update -qq
      apt-get download "$pkg" >/dev/null
    fi
    mkdir -p "$dest"
    dpkg-deb -x "$pkg"_*.deb "$dest"
  )
  rm -rf "$work"
  test -x "$dest/$bin"
  echo "ci: $pkg extracted to $dest/$bin"
}
extract victoria-metrics usr/bin/victoria-metrics
extract influxdb usr/bin/influxd
