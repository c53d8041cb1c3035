#!/usr/bin/env bash
# Installs gooseBit 0.2.12 (a hawkBit DDI server, from PyPI) with its pinned dependencies into a
# venv at /var/cache/pocketses-ci/goosebit, for tests/ci.d/60-fleet-goosebit.sh.
# Idempotent: does nothing when the venv was built from the same requirements file.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=/var/cache/pocketses-ci/goosebit
req=.ci/goosebit-requirements.txt
stamp=$(sha256sum "$req" | cut -d' ' -f1)
if [ -x "$dest/bin/uvicorn" ] && [ "$(cat "$dest/.requirements-sha256" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
rm -rf "$dest"
python3 -m venv "$dest"
# --no-deps: the file lists every package at its version, so nothing else is resolved.
"$dest/bin/pip" install -q --no-deps -r "$req"
"$dest/bin/python" -c 'import goosebit' >/dev/null 2>&1
echo "$stamp" > "$dest/.requirements-sha256"
echo "ci: gooseBit installed in $dest"
