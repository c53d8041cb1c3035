#!/usr/bin/env bash
# Cross-checks pocketses' assertions with snapd's own Go code (Debian's packaged snapd source):
#  0. the embedded copies of snapd's built-in assertions are exactly snapd's;
#  a. assertions pocketses signs verify in snapd with the same keys trusted;
#  b. assertions snapd signs verify in pocketses;
#  c. for the same input, key and signature time both produce identical bytes;
#  d. a tampered assertion fails in both;
#  e. every invalid model fixture fails in both, and snapd's message is among pocketses' problems.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v go >/dev/null || { echo "go is missing: run .ci/install (golang-go in .ci/apt-packages)" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export POCKETSES_KEYS_DIR=$work/keys
fixtures=tests/fixtures/assertions
chain=$fixtures/chain
trusted=("$chain/root.account-key" "$chain/root.account")

echo "assertion: the embedded snapd assertions match Debian's snapd source"
tools/snapd-check/extract-sysdb.sh /usr/share/gocode/src/github.com/snapcore/snapd/asserts/sysdb "$work/data" >/dev/null
diff -r src/assertion/data "$work/data"

cargo build --locked -q --bin pocketses
bin=target/debug/pocketses
tools/snapd-check/build.sh "$work/snapd-check"
check=$work/snapd-check

echo "assertion: same key ids"
"$bin" key import brand "$fixtures/keys/brand.pem" >/dev/null
"$bin" key import brand-pkcs8 "$fixtures/keys/brand-pkcs8.pem" >/dev/null
"$bin" key import root "$fixtures/keys/root.pem" >/dev/null
want=$("$check" keyid "$fixtures/keys/brand.pem")
keys=$("$bin" key list)
grep -q "^brand  *$want\$" <<<"$keys"
grep -q "^brand-pkcs8  *$want\$" <<<"$keys"

echo "assertion: snapd decodes and verifies snapd's built-in generic-classic model, pocketses too"
"$check" verify src/assertion/data/generic-classic.model
"$bin" model verify src/assertion/data/generic-classic.model

echo "assertion: (a) the committed private chain, signed by pocketses, verifies in snapd"
for f in "$chain"/*; do "$check" decode "$f" >/dev/null; done
"$check" verify -trusted "${trusted[0]}" -trusted "${trusted[1]}" "$chain/model-chain.assert"
sed -e 's/your-brand-id/testbrand/g' -e 's/pocketses-appliance-amd64/fresh/' assertions/uc22-amd64.json > "$work/in.json"
"$bin" model sign --key brand "$work/in.json" > "$work/rs.model"
"$check" verify -trusted "${trusted[0]}" -trusted "${trusted[1]}" \
  -assertions "$chain/brand.account-key" -assertions "$chain/brand.account" "$work/rs.model"

echo "assertion: (b) a model snapd signs verifies in pocketses"
"$check" sign "$fixtures/keys/brand.pem" "$work/in.json" > "$work/go.model"
"$bin" model verify "$work/go.model" --assertions "$chain/brand.account-key" "$chain/brand.account" --trusted "${trusted[@]}"

echo "assertion: (c) same input, key and signature time give identical bytes"
when=$("$check" sigtime "$work/go.model")
"$bin" model sign --key brand --signature-time "$when" "$work/in.json" > "$work/rs-same.model"
cmp "$work/go.model" "$work/rs-same.model"
# and for an account-key with a body (multi-line base64), signed by the root key
"$bin" key export brand > "$work/pub"
# JSON with the multi-line body escaped by sed (the base64 holds no quotes or backslashes)
printf '{"type":"account-key","authority-id":"testroot","account-id":"testbrand","name":"other","since":"2024-01-01T00:00:00Z","public-key-sha3-384":"%s","body":"%s"}' \
  "$want" "$(sed ':a;N;$!ba;s/\n/\\n/g' "$work/pub")" > "$work/key.json"
"$check" sign "$fixtures/keys/root.pem" "$work/key.json" > "$work/go.key"
when=$("$check" sigtime "$work/go.key")
"$bin" model sign --key root --signature-time "$when" "$work/key.json" > "$work/rs.key"
cmp "$work/go.key" "$work/rs.key"

echo "assertion: (d) tampering is caught by both"
sed 's/^architecture: amd64$/architecture: arm64/' "$work/go.model" > "$work/bad.model"
if "$check" verify -trusted "${trusted[0]}" -trusted "${trusted[1]}" -assertions "$chain/brand.account-key" \
  -assertions "$chain/brand.account" "$work/bad.model" 2>/dev/null; then
  echo "snapd accepted a tampered model" >&2; exit 1
fi
if "$bin" model verify "$work/bad.model" --assertions "$chain/brand.account-key" "$chain/brand.account" \
  --trusted "${trusted[@]}" 2>/dev/null; then
  echo "pocketses accepted a tampered model" >&2; exit 1
fi
echo "assertion: (e) for each invalid model, snapd's own error is among the problems pocketses reports"
n=0
for f in "$fixtures"/invalid/*.model; do
  if "$check" decode "$f" > "$work/go.out" 2>&1; then
    echo "snapd accepted $f" >&2; exit 1
  fi
  want=$(sed 's/^snapd-check: cannot decode [^:]*: assertion model: //' "$work/go.out")
  if "$bin" model validate "$f" > "$work/rs.out"; then
    echo "pocketses accepted $f" >&2; exit 1
  fi
  grep -qF -- "$want" "$work/rs.out" || { echo "$f: snapd says: $want; pocketses says:" >&2; cat "$work/rs.out" >&2; exit 1; }
  n=$((n + 1))
done
[ "$n" -ge 20 ] || { echo "expected at least 20 invalid models, found $n" >&2; exit 1; }
echo "assertion: snapd cross-checks passed"
