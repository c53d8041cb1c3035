#!/usr/bin/env bash
# Extracts snapd's built-in trusted and generic assertions from Debian's snapd Go source
# (golang-github-snapcore-snapd-dev) into src/assertion/data/, one file per assertion.
# Usage: tools/snapd-check/extract-sysdb.sh [SYSDB_DIR [OUTPUT_DIR]]
set -euo pipefail
sysdb=${1:-/usr/share/gocode/src/github.com/snapcore/snapd/asserts/sysdb}
out=${2:-"$(dirname "$0")/../../src/assertion/data"}
[ -r "$sysdb/trusted.go" ] || { echo "cannot find $sysdb/trusted.go: apt-get install golang-github-snapcore-snapd-dev" >&2; exit 1; }
mkdir -p "$out"
# Prints the Go raw string constant NAME from FILE, exactly as embedded (it ends with one newline).
extract() {
  awk -v name="$1" '
    $0 ~ "^[ \t]*" name " = `" { on = 1; sub("^[ \t]*" name " = `", ""); }
    on && /^`/ { exit }
    on { print }
  ' "$2"
}
extract encodedCanonicalAccount "$sysdb/trusted.go" > "$out/canonical.account"
extract encodedCanonicalRootAccountKey "$sysdb/trusted.go" > "$out/canonical-root.account-key"
extract encodedGenericAccount "$sysdb/generic.go" > "$out/generic.account"
extract encodedGenericModelsAccountKey "$sysdb/generic.go" > "$out/generic-models.account-key"
extract encodedGenericClassicModel "$sysdb/generic.go" > "$out/generic-classic.model"
for f in "$out"/*.account "$out"/*.account-key "$out"/*.model; do
  [ -s "$f" ] || { echo "cannot extract $f" >&2; exit 1; }
done
echo "extracted snapd's built-in assertions into $out"
