#!/usr/bin/env bash
# Fleet bundles against a real gooseBit 0.2.12 (installed by .ci/install.d/goosebit.sh):
#  a. gooseBit accepts a bundle made by `pocketses bundle create` + `bundle sign` through its admin
#     API, and versions it as sw-description says (version, hardware model pocketses-pc/default);
#  b. a device registers by polling the DDI API and its configData shows in gooseBit;
#  c. assigned the bundle, the device is offered it (deploymentBase, sha1, size) and the bytes it
#     downloads verify with `pocketses bundle verify` against the operator's key;
#  d. a tampered bundle (one byte of a snap changed) uploaded as 1.0.2 is refused by
#     `bundle verify`, and a bundle signed by an untrusted key is refused too; the failure
#     feedback with pocketses' reason is recorded by gooseBit (device state error, log line).
# Here the device side of (b)-(d) is curl speaking the documents src/fleet/ddi.rs builds, which
# pins gooseBit's side of the protocol independently of pocketses' client; the daemon's own DDI
# client (poll, configData, resumed downloads, apply, feedback) runs against the same gooseBit in
# the cargo test tests/fleet_goosebit.rs (about 90 s). This step takes about 15 s after the install.
set -euo pipefail
cd "$(dirname "$0")/../.."
gb=/var/cache/pocketses-ci/goosebit
[ -x "$gb/bin/uvicorn" ] || { echo "gooseBit is missing: run .ci/install (.ci/install.d/goosebit.sh)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl is missing: run .ci/install" >&2; exit 1; }
work=$(mktemp -d)
pid=
cleanup() {
  # `|| true`: under set -e a failing last command of an && list ends the script, and `wait`
  # returns the server's 143 after the kill, which would fail the step after it passed.
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "fleet: FAIL: $*" >&2; echo "--- gooseBit log:" >&2; tail -30 "$work/gb.log" >&2 || true; exit 1; }

cargo build --locked -q --bin pocketses
bin=$PWD/target/debug/pocketses
export POCKETSES_KEYS_DIR=$work/keys

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
G=http://127.0.0.1:$port
export GOOSEBIT_DB_URI=sqlite:///$work/gbdata/db.sqlite3 GOOSEBIT_ARTIFACTS_DIR=$work/gbdata/artifacts
export GOOSEBIT_POLL_TIME=00:00:10 GOOSEBIT_SECRET_KEY=pocketses-ci-not-a-secret
mkdir -p "$work/gbdata/artifacts" "$work/gbwork"
sp=$("$gb/bin/python" -c 'import goosebit, os; print(os.path.dirname(goosebit.__file__))')
(cd "$work/gbwork" && "$gb/bin/aerich" init -t goosebit.db.config.TORTOISE_CONF --location "$sp/db/migrations" \
  && "$gb/bin/aerich" upgrade) >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; exit 1; }
(cd "$work/gbwork" && exec "$gb/bin/uvicorn" goosebit:app --host 127.0.0.1 --port "$port") >"$work/gb.log" 2>&1 &
pid=$!
for _ in $(seq 300); do curl -sf -o /dev/null "$G/login" && break; sleep 0.1; done
curl -sf -o /dev/null "$G/login" || fail "gooseBit did not start within 30 s"
curl -sf -o /dev/null -XPOST "$G/setup" -d 'username=admin@goosebit.local&password=admin'
token=$(curl -sf -XPOST "$G/login" -d 'username=admin@goosebit.local&password=admin' \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
api() { curl -sf -H "Authorization: Bearer $token" "$@"; }
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }
# The device is read from gooseBit's device list: GET /api/v1/devices/ID answers 500 in 0.2.12
# once software is assigned to it.

echo "fleet: a. gooseBit versions a bundle made and signed by pocketses"
"$bin" key create --type ed25519 operator >/dev/null
"$bin" key create --type ed25519 stranger >/dev/null
operator=$("$bin" key export operator)
printf 'hsqs test snap payload' >"$work/hello_1.snap"
printf 'type: snap-revision\nauthority-id: canonical\n' >"$work/hello.assert"
"$bin" bundle create --version 1.0.1 --hardware pocketses-pc "$work/hello.assert" "$work/hello_1.snap" -o "$work/good.swu"
"$bin" bundle sign --key operator "$work/good.swu"
good_id=$(api -XPUT "$G/api/v1/software" -F "file=@$work/good.swu" | json 'd["id"]')
api "$G/api/v1/software" >"$work/software.json"
[ "$(json "[s for s in d['software'] if s['id'] == $good_id][0]['version']" <"$work/software.json")" = 1.0.1 ] || fail "version"
[ "$(json "[(h['model'], h['revision']) for s in d['software'] if s['id'] == $good_id for h in s['compatibility']]" <"$work/software.json")" = "[('pocketses-pc', 'default')]" ] || fail "hardware compatibility"
sha1=$(sha1sum "$work/good.swu" | cut -d' ' -f1)
[ "$(json "[s for s in d['software'] if s['id'] == $good_id][0]['hash']" <"$work/software.json")" = "$sha1" ] || fail "gooseBit's sha1"

echo "fleet: b. a device registers and its configData shows"
D=$G/DEFAULT/controller/v1/pocketses-ci-1
curl -sf "$D" >"$work/base.json"
json 'd["_links"]["configData"]["href"]' <"$work/base.json" >/dev/null || fail "no configData link at registration"
curl -sf -XPUT "$D/configData" -H 'Content-Type: application/json' -d '{"mode": "merge", "data": {"hw_boardname": "pocketses-pc", "hw_revision": "default", "brand": "acme", "model": "pocketses-pc", "model_revision": "1", "pocketses_version": "0.1.0", "snap.core22": "1380"}}' >/dev/null
api "$G/api/v1/devices" | json "json.dumps([x for x in d['devices'] if x['id'] == 'pocketses-ci-1'][0])" >"$work/device.json"
[ "$(json 'd["hardware"]["model"], d["hardware"]["revision"], d["last_state"]' <"$work/device.json")" = 'pocketses-pc default Registered' ] || fail "device: $(cat "$work/device.json")"

echo "fleet: c. the assigned bundle is offered and what the device downloads verifies"
api -XPATCH "$G/api/v1/devices" -H 'Content-Type: application/json' -d "{\"devices\": [\"pocketses-ci-1\"], \"software\": \"$good_id\"}" >/dev/null
curl -sf "$D" >"$work/base.json"
deployment=$(json 'd["_links"]["deploymentBase"]["href"]' <"$work/base.json") || fail "no deploymentBase after assignment"
curl -sf "$deployment" >"$work/deployment.json"
[ "$(json 'd["deployment"]["chunks"][0]["artifacts"][0]["hashes"]["sha1"]' <"$work/deployment.json")" = "$sha1" ] || fail "artifact sha1"
[ "$(json 'd["deployment"]["chunks"][0]["artifacts"][0]["size"]' <"$work/deployment.json")" = "$(stat -c %s "$work/good.swu")" ] || fail "artifact size"
href=$(json 'd["deployment"]["chunks"][0]["artifacts"][0]["_links"]["download"]["href"]' <"$work/deployment.json")
curl -sf -o "$work/downloaded.swu" "$href"
"$bin" bundle verify --trusted "$operator" "$work/downloaded.swu" | grep -q "verified: version 1.0.1, 2 files, signed by $operator" || fail "downloaded bundle does not verify"
curl -sf -XPOST "${deployment%%\?*}/feedback" -H 'Content-Type: application/json' \
  -d '{"status": {"execution": "closed", "result": {"finished": "success"}, "details": ["pocketses: bundle 1.0.1 verified"]}}' >/dev/null
api "$G/api/v1/devices" | json "json.dumps([x for x in d['devices'] if x['id'] == 'pocketses-ci-1'][0])" >"$work/device.json"
[ "$(json 'd["sw_version"], d["last_state"], d["progress"]' <"$work/device.json")" = '1.0.1 Finished 100' ] || fail "gooseBit did not record success: $(cat "$work/device.json")"

echo "fleet: d. tampered and untrusted bundles are refused, and gooseBit records the failure"
cp "$work/good.swu" "$work/tampered.swu"
python3 - "$work/tampered.swu" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
i = b.index(b'payload')
b[i] = ord('P')
open(p, 'wb').write(bytes(b))
PY
if out=$("$bin" bundle verify --trusted "$operator" "$work/tampered.swu" 2>&1); then fail "tampered bundle verified"; fi
grep -q '^error: cannot read bundle: entry "hello_1.snap" does not match its cpio checksum$' <<<"$out" || fail "tampered: $out"
"$bin" bundle create --version 1.0.2 --hardware pocketses-pc "$work/hello_1.snap" -o "$work/stranger.swu"
"$bin" bundle sign --key stranger "$work/stranger.swu"
if out=$("$bin" bundle verify --trusted "$operator" "$work/stranger.swu" 2>&1); then fail "untrusted bundle verified"; fi
grep -q '^error: cannot read bundle: signed by untrusted key ' <<<"$out" || fail "untrusted: $out"
stranger_id=$(api -XPUT "$G/api/v1/software" -F "file=@$work/stranger.swu" | json 'd["id"]')
api -XPATCH "$G/api/v1/devices" -H 'Content-Type: application/json' -d "{\"devices\": [\"pocketses-ci-1\"], \"software\": \"$stranger_id\"}" >/dev/null
curl -sf "$D" >"$work/base.json"
deployment=$(json 'd["_links"]["deploymentBase"]["href"]' <"$work/base.json") || fail "no deploymentBase for 1.0.2"
reason=${out#error: }
curl -sf -XPOST "${deployment%%\?*}/feedback" -H 'Content-Type: application/json' \
  -d "$(python3 -c 'import json, sys; print(json.dumps({"status": {"execution": "closed", "result": {"finished": "failure"}, "details": [sys.argv[1]]}}))' "$reason")" >/dev/null
api "$G/api/v1/devices" | json "json.dumps([x for x in d['devices'] if x['id'] == 'pocketses-ci-1'][0])" >"$work/device.json"
[ "$(json 'd["last_state"], d["sw_version"]' <"$work/device.json")" = 'Error 1.0.1' ] || fail "device not in error: $(cat "$work/device.json")"
api "$G/api/v1/devices/pocketses-ci-1/log" >"$work/log.json"
grep -q "signed by untrusted key" "$work/log.json" || fail "failure reason not in gooseBit's log: $(cat "$work/log.json")"
echo "fleet: ok"
