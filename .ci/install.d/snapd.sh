#!/usr/bin/env bash
# snapd area: the real snapd used by tests/snapd_real.rs comes from the `snapd` Debian package
# (.ci/apt-packages). Nothing to fetch here; check it is in place and that no init script started it.
set -euo pipefail
if [ ! -x /usr/lib/snapd/snapd ]; then
  echo "ci: /usr/lib/snapd/snapd is missing although snapd is in .ci/apt-packages" >&2
  exit 1
fi
mkdir -p /run/lock
