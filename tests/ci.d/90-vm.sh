#!/usr/bin/env bash
# The VM layer: the pocketses snap installed and driven by a real snapd (Debian 12 guest under
# QEMU), running every spread task in tests/spread/. Slow (minutes); see docs/testing.md.
set -euo pipefail
t0=$SECONDS
bash tests/vm/run
echo "vm: $((SECONDS - t0))s"
