#!/usr/bin/env bash
# Fuzzes the assertion decoder for a bounded time (default 60 s): fuzz/run.sh [SECONDS]
# Needs a nightly toolchain (rustup toolchain install nightly) and cargo-fuzz
# (cargo install cargo-fuzz). Not part of every CI run. Seeds: snapd's built-in assertions
# and the private test chain, in fuzz/seeds/decode.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install cargo-fuzz" >&2; exit 1; }
rustup run nightly true 2>/dev/null || { echo "a nightly toolchain is missing: rustup toolchain install nightly" >&2; exit 1; }
# -max_len bounds single inputs above snapd's header limit so the size checks are exercised.
mkdir -p corpus/decode
# New inputs go to corpus/ (ignored by git); the committed seeds stay as they are.
cargo +nightly fuzz run decode corpus/decode seeds/decode -- -max_total_time="$secs" -max_len=262144 -rss_limit_mb=2048
