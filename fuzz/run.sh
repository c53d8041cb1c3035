#!/usr/bin/env bash
# Fuzzes each decoder of outside input for a bounded time: fuzz/run.sh [SECONDS] [TARGET...]
# (default 60 s each, every target). Prints, per target: executions, coverage (libFuzzer's
# `cov:` edges and `ft:` features), corpus size and crashes; exits 1 if any target crashed.
#
# Targets (fuzz/fuzz_targets/): bundle (fleet bundles and DDI replies), decode (assertions), gadget (gadget.yaml), snapd (snapd's
# replies through the client), control (control socket lines), http (routing after hyper).
# Seeds are committed in fuzz/seeds/TARGET; new inputs go to fuzz/corpus/TARGET, crashes to
# fuzz/artifacts/TARGET and logs to fuzz/logs (all ignored by git).
#
# Needs cargo-fuzz (cargo install --locked cargo-fuzz) and a compiler that takes -Z flags:
# a nightly toolchain when rustup has one, else the stable one with RUSTC_BOOTSTRAP=1.
# Not part of every CI run; docs/security.md records the last long run.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(decode gadget snapd control http bundle)
fi
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing: cargo install --locked cargo-fuzz" >&2; exit 1; }
if rustup run nightly true 2>/dev/null; then
  cargo=(cargo +nightly fuzz)
else
  echo "fuzz: no nightly toolchain; using $(rustc --version) with RUSTC_BOOTSTRAP=1" >&2
  export RUSTC_BOOTSTRAP=1
  cargo=(cargo fuzz)
fi
mkdir -p logs
failed=0
printf '%-8s %12s %8s %8s %8s %8s\n' target executions cov ft corpus crashes
for t in "${targets[@]}"; do
  [ -f "fuzz_targets/$t.rs" ] || { echo "fuzz: no target $t" >&2; exit 2; }
  mkdir -p "corpus/$t" "seeds/$t" "artifacts/$t"
  before=$(find "artifacts/$t" -type f | wc -l)
  # -max_len lets single inputs exceed snapd's assertion header limit (256 KiB) so size checks
  # run; -timeout turns an input that takes 10 s into a finding (a hang is a bug too).
  rc=0
  "${cargo[@]}" run "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$secs" -max_len=262144 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 >"logs/$t.log" 2>&1 || rc=$?
  after=$(find "artifacts/$t" -type f | wc -l)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log" | tail -1)
  last=$(grep -E '^#[0-9]+.*cov: ' "logs/$t.log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  crashes=$((after - before))
  printf '%-8s %12s %8s %8s %8s %8s\n' "$t" "${runs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes"
  if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
    echo "fuzz: $t failed (exit $rc); see fuzz/logs/$t.log and fuzz/artifacts/$t" >&2
    failed=1
  fi
done
exit "$failed"
