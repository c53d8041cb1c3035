#!/usr/bin/env bash
# Self-test of the spread stand-in (spread-run.py) and the spread checker, without a VM: a small
# project in a temp dir is "run on the machine" through `bash -c` instead of ssh. Checks section
# order, priority, environment cascade and variants, MATCH/NOMATCH, systems filtering, debug and restore
# on failure, the summary line and the exit code, and --suite (tests/vm/run's split of the suites).
set -euo pipefail
VM_DIR=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "selftest: $*" >&2; exit 1; }

mkdir -p "$work/tests/main/pass" "$work/tests/main/fail" "$work/tests/main/skip" "$work/tests/other/only"
cat >"$work/spread.yaml" <<YAML
project: selftest
path: $work
environment:
  LOG: $work/order.log
  LAYER: project
  FROM_HOST: "\$(HOST: echo host-side)"
backends:
  adhoc:
    allocate: ADDRESS localhost:22
    systems:
      - debian-12-64:
          username: root
          password: x
prepare: echo "project prepare" >>"\$LOG"
restore: echo "project restore" >>"\$LOG"
suites:
  tests/main/:
    summary: selftest suite
    environment:
      LAYER: suite
    prepare-each: echo "prepare-each \$SPREAD_TASK" >>"\$LOG"
    restore-each: echo "restore-each \$SPREAD_TASK" >>"\$LOG"
    debug-each: echo "debug-each output"
  tests/other/:
    summary: a second suite, for --suite
YAML
cat >"$work/tests/other/only/task.yaml" <<'YAML'
summary: runs when its suite is named
execute: echo "execute other" >>"$LOG"
YAML
cat >"$work/tests/main/pass/task.yaml" <<'YAML'
summary: passes, twice (variants)
priority: 5
environment:
  WORD/one: alpha
  WORD/two: beta
execute: |
  echo "execute pass $SPREAD_VARIANT $WORD $LAYER $FROM_HOST $(basename "$PWD")" >>"$LOG"
  echo "hello $WORD" | MATCH '^hello (alpha|beta)$'
  echo "hello" | NOMATCH 'bye'
restore: echo "restore pass" >>"$LOG"
YAML
cat >"$work/tests/main/fail/task.yaml" <<'YAML'
summary: fails in execute
execute: |
  echo "execute fail" >>"$LOG"
  echo "actual output" | MATCH 'expected output'
  echo "never reached" >>"$LOG"
debug: echo "task debug output"
restore: echo "restore fail" >>"$LOG"
YAML
cat >"$work/tests/main/skip/task.yaml" <<'YAML'
summary: not for this system
systems: [-debian-12-64]
execute: echo "execute skip" >>"$LOG"
YAML

python3 "$VM_DIR/check-spread.py" "$work" >/dev/null || fail "check-spread rejects a valid project"
rc=0
python3 "$VM_DIR/spread-run.py" --ssh 'bash -c' --project "$work" --suite tests/main/ >"$work/out" 2>&1 || rc=$?
[ $rc -eq 1 ] || { cat "$work/out"; fail "exit code $rc, want 1 (one task failed)"; }
grep -q '^PASS tests/main/pass:one ' "$work/out" || fail "no PASS for pass:one"
grep -q '^PASS tests/main/pass:two ' "$work/out" || fail "no PASS for pass:two"
grep -q '^FAIL tests/main/fail .*(execute failed)' "$work/out" || fail "no FAIL for fail"
grep -q '^SKIP tests/main/skip ' "$work/out" || fail "no SKIP for skip"
grep -q 'error: pattern not found, got:' "$work/out" || fail "MATCH did not explain the failure"
grep -q 'task debug output' "$work/out" || fail "debug did not run"
grep -q 'debug-each output' "$work/out" || fail "debug-each did not run"
grep -qx '2 passed, 1 failed, 1 skipped' "$work/out" || fail "summary line"
want="project prepare
prepare-each tests/main/pass
execute pass one alpha suite host-side pass
restore pass
restore-each tests/main/pass
prepare-each tests/main/pass
execute pass two beta suite host-side pass
restore pass
restore-each tests/main/pass
prepare-each tests/main/fail
execute fail
restore fail
restore-each tests/main/fail
project restore"
[ "$(cat "$work/order.log")" = "$want" ] || { diff <(echo "$want") "$work/order.log"; fail "section order"; }

# --suite runs only the suites it names; without it, every suite.
: >"$work/order.log"
python3 "$VM_DIR/spread-run.py" --ssh 'bash -c' --project "$work" --suite tests/other >"$work/out" 2>&1 ||
  { cat "$work/out"; fail "--suite tests/other failed"; }
grep -qx '1 passed, 0 failed' "$work/out" || { cat "$work/out"; fail "--suite ran other suites too"; }
grep -qx 'execute other' "$work/order.log" || fail "--suite tests/other did not run its task"
rc=0
python3 "$VM_DIR/spread-run.py" --ssh 'bash -c' --project "$work" >"$work/out" 2>&1 || rc=$?
grep -qx '3 passed, 1 failed, 1 skipped' "$work/out" || { cat "$work/out"; fail "without --suite: not every suite ran"; }

# A broken task file is refused by the checker.
printf 'summary: x\nexecute: |\n  if then\nbogus-key: 1\n' >"$work/tests/main/skip/task.yaml"
if python3 "$VM_DIR/check-spread.py" "$work" >"$work/check" 2>&1; then fail "check-spread accepted a broken task"; fi
grep -q "unknown key 'bogus-key'" "$work/check" || fail "check-spread missed an unknown key"
grep -q 'shell syntax' "$work/check" || fail "check-spread missed a shell syntax error"
echo "selftest: spread-run and check-spread behave"
