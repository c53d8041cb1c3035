#!/usr/bin/env bash
# Supply chain: cargo-deny for the `cargo deny check` step of tests/run (deny.toml says what it
# checks). Built from crates.io with the versions its own Cargo.lock pins (--locked), once per
# machine: the binary stays in ~/.cargo/bin and this script does nothing while the pinned
# version is there. A fresh build takes about 19 minutes on 2 cores shared with other builds (docs/security.md).
set -euo pipefail
version=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" = "cargo-deny $version" ]; then
  exit 0
fi
echo "ci: installing cargo-deny $version (cargo install --locked; several minutes)"
start=$(date +%s)
cargo install --locked --quiet cargo-deny --version "$version"
echo "ci: cargo-deny $version installed in $(( $(date +%s) - start )) s"
