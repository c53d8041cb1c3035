#!/usr/bin/env bash
# The test brand for the real-remodel VM phase (docs/remodel.md): everything a snapd built
# with snapd's test keys needs to seed a branded classic device, register it with a serial vault
# and remodel it through a store, made on the host and cached in $CACHE/brand.
#
#   tests/vm/brand.sh --pocketses BIN [--snaps DIR] [--base-image IMG]
#
# 1. keys: `testbrand export` (tools/testbrand) writes the test root key and assertstest.DevKey as
#    PEM; `pocketses key import` takes them.
# 2. assertions, all signed by pocketses (`pocketses model sign`): the account and account-key
#    of the brand "developer1" (signed by the test root "testrootorg"; developer1 because
#    snapd's fakedevicesvc signs serials as developer1 with DevKey), and the models: seed.model
#    (revision 0), update.model (revision 1, adds the required snap remodel-extra),
#    missing.model (revision 2, also requires remodel-missing, which no store has),
#    rereg.model (another model name: a re-registration), slow.model (revision 2, adds
#    remodel-slow, whose install hook holds the change until released: for --abort and
#    re-attaching across restarts). snapd's own asserts package
#    (tools/snapd-check) verifies each chain against the test root before anything boots.
# 3. snaps (mksquashfs): the gadget pocketses-test-gadget (its prepare-device hook points snapd
#    at the fake serial vault), remodel-extra and remodel-slow; fakestore signs their
#    snap-declarations and snap-revisions with the test store key.
# 4. the guest image brand.img: a copy of base.img with, written in by debugfs (no mount, no
#    boot): the test-keys snapd over /usr/lib/snapd/snapd, fakestore + store-front +
#    fakedevicesvc as systemd units, snapd pointed at them (SNAPPY_FORCE_API_URL), and the seed
#    (seed.model with its chain, the snapd and base placeholders and the gadget, unasserted),
#    and an ssh-keygen shim for snapd alone (the device key, below).
#    The first boot seeds it, runs the gadget's prepare-device hook and registers.
#
# The device key: snapd 2.57 makes it with `ssh-keygen -t rsa -b 4096 -N "" -f FILE -m PEM`
# (overlord/devicestate/crypto.go; keyLength in handlers_serial.go), about two minutes under
# TCG. The image puts a shim first on snapd.service's PATH that writes a 4096-bit key made once
# on the host ($CACHE/brand/device-key.pem, a second or two natively) to FILE instead: the same
# kind of key, read by snapd at the same point of its flow, without the emulated key search.
#
# The remodel kit for the spread tasks (tests/spread/remodel/) is $CACHE/brand/kit: the models,
# and remodel-extra's snap and assertions for the offline variant; kit/fleet/ holds a snap the
# store vouches for, as `snap download` gives one (NAME_REV.snap and NAME_REV.assert: the store
# key's account-key, the snap-declaration and the snap-revision, made by fakestore), for
# tests/spread/fleet/bundle-apply-vouched.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

POCKETSES=
SNAPS=$CACHE/snaps
BASE_IMG=$CACHE/base.img
while [ $# -gt 0 ]; do
  case $1 in
    --pocketses) POCKETSES=$2; shift 2 ;;
    --snaps) SNAPS=$2; shift 2 ;;
    --base-image) BASE_IMG=$2; shift 2 ;;
    *) die "brand.sh: unknown argument $1" ;;
  esac
done
[ -x "$POCKETSES" ] || die "brand.sh: --pocketses BIN is required"
TK=${POCKETSES_SNAPD_TESTKEYS:-/var/cache/pocketses-ci/snapd-testkeys}
for b in snapd fakestore fakedevicesvc testbrand; do
  [ -x "$TK/bin/$b" ] || die "missing $TK/bin/$b: run .ci/install.d/snapd-testkeys.sh"
done
B=$CACHE/brand
BRAND=developer1
MODEL=pocketses-classic
GADGET=pocketses-test-gadget
# Ports inside the guest (loopback only).
STORE_PORT=11028 FAKESTORE_PORT=11030 VAULT_PORT=11029
# Fixed times: the same inputs give the same bytes (the image is cached on them).
SINCE=2026-01-01T00:00:00Z
STAMP=2026-01-02T00:00:00Z

# Bump when the gadget in snaps() or image() change: brand.img (and the registered snapshot made
# from it) is cached on this, the test-keys build, the seed's snaps, the seed model and the base image.
IMAGE_VERSION=2
image_key() {
  {
    echo "brand image v$IMAGE_VERSION"
    cat "$TK/key"
    sha256sum "$SNAPS/snapd_vm.snap" "$SNAPS/core22_vm.snap" "$B/assert/seed.model" "$B/device-key.pem" | awk '{print $1}'
    cat "$BASE_IMG.id" 2>/dev/null
  } | sha256sum | awk '{print $1}'
}

sign() { # sign KEY JSON-FILE OUT
  "$POCKETSES" model sign --key "$1" --signature-time "$STAMP" "$2" >"$3.tmp"
  mv "$3.tmp" "$3"
}

mint() {
  local keys=$B/keys
  rm -rf "$keys" "$B/assert"
  mkdir -p "$B/assert"
  "$TK/bin/testbrand" export "$keys"
  export POCKETSES_KEYS_DIR=$keys/store
  "$POCKETSES" key import testrootorg "$keys/root.pem" >/dev/null
  "$POCKETSES" key import "$BRAND" "$keys/developer1.pem" >/dev/null
  # The imported root key must be the one snapd trusts: same sha3-384 id as the built-in
  # root account-key's.
  local root_id dev_id
  root_id=$(sed -n 's/^public-key-sha3-384: //p' "$keys/testrootorg.account-key")
  "$POCKETSES" key list | grep -q "^testrootorg  *$root_id\$" ||
    die "pocketses computes another key id for the test root than snapd's $root_id"
  dev_id=$("$POCKETSES" key list | awk -v n="$BRAND" '$1 == n {print $2}')

  cat >"$B/assert/account.json" <<EOF
{"type": "account", "authority-id": "testrootorg", "account-id": "$BRAND",
 "display-name": "Developer1 (pocketses test brand)", "username": "$BRAND",
 "validation": "verified", "timestamp": "$SINCE"}
EOF
  sign testrootorg "$B/assert/account.json" "$B/assert/$BRAND.account"
  "$POCKETSES" key export "$BRAND" >"$B/assert/dev.pub"
  python3 - "$B/assert/account-key.json" "$BRAND" "$dev_id" "$SINCE" "$B/assert/dev.pub" <<'EOF'
import json, sys
out, brand, key_id, since, pub = sys.argv[1:]
json.dump({"type": "account-key", "authority-id": "testrootorg", "account-id": brand,
           "name": "default", "since": since, "public-key-sha3-384": key_id,
           "body": open(pub).read().strip()}, open(out, "w"))
EOF
  sign testrootorg "$B/assert/account-key.json" "$B/assert/$BRAND.account-key"

  model_json() { # model_json NAME REVISION REQUIRED-SNAPS...
    local name=$1 rev=$2 req=""; shift 2
    [ $# -gt 0 ] && req=", \"required-snaps\": [$(printf '"%s", ' "$@" | sed 's/, $//')]"
    cat <<EOF
{"type": "model", "authority-id": "$BRAND", "brand-id": "$BRAND", "series": "16",
 "model": "$name", "revision": "$rev", "classic": "true", "architecture": "amd64",
 "gadget": "$GADGET", "timestamp": "$STAMP"$req}
EOF
  }
  # A remodel needs the model to list the bases of its snaps too (snapd's "cannot remodel with
  # incomplete model"): remodel-extra's base core22.
  model_json "$MODEL" 0 >"$B/assert/seed.json"
  model_json "$MODEL" 1 core22 remodel-extra >"$B/assert/update.json"
  model_json "$MODEL" 2 core22 remodel-extra remodel-missing >"$B/assert/missing.json"
  model_json "$MODEL" 2 core22 remodel-extra remodel-slow >"$B/assert/slow.json"
  model_json "$MODEL-b" 0 core22 remodel-extra >"$B/assert/rereg.json"
  local m
  for m in seed update missing slow rereg; do
    sign "$BRAND" "$B/assert/$m.json" "$B/assert/$m.model"
  done
}

# snapd's own asserts code checks every chain: the models, with the account and account-key
# pocketses signed, against the test root (as the test-keys snapd has it built in).
verify() {
  local check=$B/snapd-check m
  [ -x "$check" ] || "$REPO/tools/snapd-check/build.sh" "$check"
  for m in seed update missing slow rereg; do
    "$check" verify -trusted "$B/keys/testrootorg.account-key" -trusted "$B/keys/testrootorg.account" \
      -assertions "$B/assert/$BRAND.account-key" -assertions "$B/assert/$BRAND.account" \
      "$B/assert/$m.model" >/dev/null ||
      die "snapd's asserts package rejects $m.model"
  done
  log "snapd's asserts package verifies the developer1 chain to testrootorg for all models"
}

snaps() {
  local w=$B/work
  rm -rf "$w" && mkdir -p "$w/gadget/meta/hooks" "$w/extra/meta" "$w/extra/bin" "$w/slow/meta/hooks" "$w/slow/bin" \
    "$w/vouched/meta" "$w/vouched/bin" "$B/snaps"
  cat >"$w/gadget/meta/snap.yaml" <<EOF
name: $GADGET
version: '1.0'
type: gadget
base: core22
summary: classic gadget of the pocketses test brand
description: Points snapd at the fake serial vault (prepare-device hook).
EOF
  # Classic gadgets may leave out volumes (gadget.InfoFromGadgetYaml).
  printf '# classic: no volumes\n{}\n' >"$w/gadget/meta/gadget.yaml"
  cat >"$w/gadget/meta/hooks/prepare-device" <<EOF
#!/bin/sh
# snapd reads these before its serial request (overlord/devicestate/handlers_serial.go).
exec /usr/lib/snapd/snapctl set device-service.url=http://127.0.0.1:$VAULT_PORT/
EOF
  chmod 755 "$w/gadget/meta/hooks/prepare-device"
  cat >"$w/extra/meta/snap.yaml" <<EOF
name: remodel-extra
version: '1.0'
base: core22
summary: the snap the update remodel adds
description: Served by the fake store; required by update.model.
apps:
  hello:
    command: bin/hello
EOF
  printf '#!/bin/sh\necho "hello from remodel-extra"\n' >"$w/extra/bin/hello"
  chmod 755 "$w/extra/bin/hello"
  cat >"$w/slow/meta/snap.yaml" <<EOF
name: remodel-slow
version: '1.0'
base: core22
summary: the snap that holds a remodel in progress
description: Its install hook waits until SNAP_COMMON/release exists (at most 8 minutes).
EOF
  # Runs on the base's shell (the placeholder core22 has busybox as /bin/sh); sleeps with the
  # snap's own busybox: AppArmor lets a hook run its snap's files, not the base's busybox applets
  # ("sleep: Permission denied").
  cp "${BUSYBOX:-/bin/busybox}" "$w/slow/bin/busybox"
  chmod 755 "$w/slow/bin/busybox"
  cat >"$w/slow/meta/hooks/install" <<'EOF'
#!/bin/sh
# Holds the remodel that installs this snap in its "Run install hook" task until
# $SNAP_COMMON/release exists (tests/spread/remodel/abort and reattach); gives up after 8 min.
i=0
while [ ! -e "$SNAP_COMMON/release" ] && [ "$i" -lt 480 ]; do
    "$SNAP/bin/busybox" sleep 1 || exit 1
    i=$((i + 1))
done
EOF
  chmod 755 "$w/slow/meta/hooks/install"
  cat >"$w/vouched/meta/snap.yaml" <<EOF
name: pocketses-fleet-vouched
version: '1.0'
base: core22
summary: the snap a fleet bundle installs with its store assertions
description: Its snap-declaration and snap-revision are signed with the test store key.
apps:
  hello:
    command: bin/hello
EOF
  printf '#!/bin/sh\necho "hello from pocketses-fleet-vouched"\n' >"$w/vouched/bin/hello"
  chmod 755 "$w/vouched/bin/hello"
  local s
  for s in gadget extra slow vouched; do
    mksquashfs "$w/$s" "$w/$s.snap" -noappend -comp xz -all-root -no-xattrs -no-fragments \
      -quiet -no-progress -all-time 0 -mkfs-time 0 >/dev/null
  done
  mv "$w/gadget.snap" "$B/snaps/${GADGET}_1.0_all.snap"
  # fakestore finds snaps by file name (NAME_...) and assertions in DIR/asserts.
  rm -rf "$B/store" && mkdir -p "$B/store/asserts"
  mv "$w/extra.snap" "$B/store/remodel-extra_1.0_amd64.snap"
  mv "$w/slow.snap" "$B/store/remodel-slow_1.0_amd64.snap"
  for s in remodel-extra remodel-slow; do
    "$TK/bin/fakestore" new-snap-declaration --dir "$B/store" "$B/store/${s}_1.0_amd64.snap" >/dev/null
    "$TK/bin/fakestore" new-snap-revision --dir "$B/store" "$B/store/${s}_1.0_amd64.snap" >/dev/null
  done
  cp "$B/assert/$BRAND.account" "$B/assert/$BRAND.account-key" "$B/store/asserts/"
  # The fleet's vouched snap: not in the store (the bundle carries it); its assertions made by
  # fakestore beside it.
  rm -rf "$B/fleet" && mkdir -p "$B/fleet"
  mv "$w/vouched.snap" "$B/fleet/pocketses-fleet-vouched_1.snap"
  "$TK/bin/fakestore" new-snap-declaration --dir "$B/fleet" "$B/fleet/pocketses-fleet-vouched_1.snap" >/dev/null
  "$TK/bin/fakestore" new-snap-revision --dir "$B/fleet" "$B/fleet/pocketses-fleet-vouched_1.snap" >/dev/null
  rm -rf "$w"
}

kit() {
  rm -rf "$B/kit" && mkdir -p "$B/kit/offline"
  cp "$B/assert/update.model" "$B/assert/missing.model" "$B/assert/slow.model" "$B/assert/rereg.model" "$B/kit/"
  cp "$B/store/remodel-extra_1.0_amd64.snap" "$B/kit/offline/"
  # remodel-extra's snap-declaration + snap-revision (test store key) and the store key's
  # account-key.
  local a
  for a in "$B/store/asserts"/*.snap-declaration "$B/store/asserts"/*.snap-revision; do
    if grep -qx 'snap-id: remodel-extra-id' "$a"; then cp "$a" "$B/kit/offline/"; fi
  done
  cp "$B/keys/teststore.account-key" "$B/kit/offline/"
  # The fleet's vouched snap, as `snap download` lays one out: the snap, and one .assert file
  # with the signing key's account-key, the snap-declaration and the snap-revision.
  mkdir -p "$B/kit/fleet"
  cp "$B/fleet/pocketses-fleet-vouched_1.snap" "$B/kit/fleet/"
  {
    cat "$B/keys/teststore.account-key"
    echo
    cat "$B/fleet/asserts"/*.snap-declaration
    echo
    cat "$B/fleet/asserts"/*.snap-revision
  } >"$B/kit/fleet/pocketses-fleet-vouched_1.assert"
  cat >"$B/kit/README" <<EOF
Remodel kit of the pocketses test brand ($BRAND/$MODEL), made by tests/vm/brand.sh.
update.model   revision 1, adds the required snap remodel-extra (an update remodel)
missing.model  revision 2, also requires remodel-missing, which the store does not have
slow.model     revision 2, adds remodel-slow: its install hook holds the change until
               /var/snap/remodel-slow/common/release exists (abort, re-attach)
rereg.model    model $MODEL-b: a re-registration remodel
offline/       remodel-extra's snap and its assertions, for --offline
fleet/         pocketses-fleet-vouched_1.snap and .assert (as snap download gives them): a
               snap the store vouches for, for a fleet bundle applied without dangerous
EOF
}

image() {
  local o=$B/overlay
  rm -rf "$o"
  mkdir -p "$o/usr/lib/snapd" "$o/usr/local/bin" "$o/etc/systemd/system/multi-user.target.wants" \
    "$o/etc/systemd/system/snapd.service.d" "$o/var/lib/snapd/seed/assertions" "$o/var/lib/snapd/seed/snaps" \
    "$o/var/lib/pocketses-fakestore"
  cp "$TK/bin/snapd" "$o/usr/lib/snapd/snapd"
  mkdir -p "$o/usr/local/lib/pocketses-testbrand/bin"
  cp "$B/device-key.pem" "$o/usr/local/lib/pocketses-testbrand/device-key.pem"
  cat >"$o/usr/local/lib/pocketses-testbrand/bin/ssh-keygen" <<'EOF'
#!/bin/sh
# snapd's device key (see tests/vm/brand.sh): for `ssh-keygen ... -f FILE` write the key made on
# the host to FILE; anything else goes to the real ssh-keygen.
key=/usr/local/lib/pocketses-testbrand/device-key.pem
file= prev=
for a in "$@"; do
    [ "$prev" = -f ] && file=$a
    prev=$a
done
case " $* " in
    *" -t rsa "*" -m PEM "*) ;;
    *) exec /usr/bin/ssh-keygen "$@" ;;
esac
[ -n "$file" ] && [ -r "$key" ] || exec /usr/bin/ssh-keygen "$@"
echo "pocketses test brand: device key from $key" >&2
install -m 600 "$key" "$file"
EOF
  chmod 755 "$o/usr/local/lib/pocketses-testbrand/bin/ssh-keygen"
  cp "$TK/bin/fakestore" "$TK/bin/fakedevicesvc" "$TK/bin/testbrand" "$o/usr/local/bin/"
  cp -r "$B/store/." "$o/var/lib/pocketses-fakestore/"
  unit() { # unit NAME DESCRIPTION EXEC
    cat >"$o/etc/systemd/system/$1.service" <<EOF
[Unit]
Description=$2 (pocketses test brand)
Before=snapd.service

[Service]
ExecStart=$3
Restart=on-failure

[Install]
WantedBy=multi-user.target
EOF
    ln -s "/etc/systemd/system/$1.service" "$o/etc/systemd/system/multi-user.target.wants/$1.service"
  }
  unit pocketses-fakestore "snapd's fake store" \
    "/usr/local/bin/fakestore run --dir /var/lib/pocketses-fakestore --addr 127.0.0.1:$FAKESTORE_PORT"
  unit pocketses-store-front "device sessions in front of the fake store" \
    "/usr/local/bin/testbrand store-front 127.0.0.1:$STORE_PORT http://127.0.0.1:$FAKESTORE_PORT"
  unit pocketses-fakedevicesvc "snapd's fake serial vault" "/usr/local/bin/fakedevicesvc 127.0.0.1:$VAULT_PORT"
  cat >"$o/etc/systemd/system/snapd.service.d/pocketses-testbrand.conf" <<EOF
# The test brand: snapd (built with snapd's test keys) talks to the fake store, never re-execs.
[Unit]
Wants=pocketses-fakestore.service pocketses-store-front.service pocketses-fakedevicesvc.service
After=pocketses-fakestore.service pocketses-store-front.service pocketses-fakedevicesvc.service

[Service]
Environment=SNAPPY_FORCE_API_URL=http://127.0.0.1:$STORE_PORT/
Environment=SNAPPY_FORCE_SAS_URL=http://127.0.0.1:$STORE_PORT/
Environment=SNAP_REEXEC=0
Environment=PATH=/usr/local/lib/pocketses-testbrand/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
EOF
  cp "$B/assert/seed.model" "$o/var/lib/snapd/seed/assertions/model"
  cp "$B/assert/$BRAND.account" "$B/assert/$BRAND.account-key" "$o/var/lib/snapd/seed/assertions/"
  cp "$SNAPS/snapd_vm.snap" "$SNAPS/core22_vm.snap" "$B/snaps/${GADGET}_1.0_all.snap" "$o/var/lib/snapd/seed/snaps/"
  cat >"$o/var/lib/snapd/seed/seed.yaml" <<EOF
snaps:
  - name: snapd
    file: snapd_vm.snap
    unasserted: true
  - name: core22
    file: core22_vm.snap
    unasserted: true
  - name: $GADGET
    file: ${GADGET}_1.0_all.snap
    unasserted: true
EOF
  # debugfs commands: directories first (existing ones are fine), then files (replacing), links.
  local cmds=$B/debugfs.cmds p
  : >"$cmds"
  (cd "$o" && find . -mindepth 1 -type d | sed 's,^\.,,' | sort) | while read -r p; do
    echo "mkdir $p" >>"$cmds"
  done
  (cd "$o" && find . -type f | sed 's,^\.,,' | sort) | while read -r p; do
    printf 'rm %s\nwrite %s %s\n' "$p" "$o$p" "$p" >>"$cmds"
  done
  (cd "$o" && find . -type l | sed 's,^\.,,' | sort) | while read -r p; do
    printf 'rm %s\nsymlink %s %s\n' "$p" "$p" "$(readlink "$o$p")" >>"$cmds"
  done
  rm -f "$CACHE/brand.img.tmp"
  cp --sparse=always "$BASE_IMG" "$CACHE/brand.img.tmp"
  debugfs -w -f "$cmds" "$CACHE/brand.img.tmp" >"$B/debugfs.log" 2>&1
  # Check what matters landed (debugfs reports failures only in its log).
  for p in /usr/lib/snapd/snapd /var/lib/snapd/seed/seed.yaml /var/lib/snapd/seed/assertions/model \
    /etc/systemd/system/snapd.service.d/pocketses-testbrand.conf; do
    debugfs -R "stat $p" "$CACHE/brand.img.tmp" 2>/dev/null | grep -q "Type: regular" ||
      die "brand.img: $p was not written (see $B/debugfs.log)"
  done
  [ "$(debugfs -R "stat /usr/lib/snapd/snapd" "$CACHE/brand.img.tmp" 2>/dev/null | sed -n 's/.*Size: \([0-9]*\).*/\1/p' | head -1)" = \
    "$(stat -c %s "$TK/bin/snapd")" ] || die "brand.img: /usr/lib/snapd/snapd is not the test-keys snapd"
  mv "$CACHE/brand.img.tmp" "$CACHE/brand.img"
}

main() {
  mkdir -p "$B"
  # The assertions are signed every time (a second, deterministic: fixed times); the snaps, the
  # store and the image only when their inputs changed.
  step brand-mint mint
  step brand-verify verify
  if [ ! -s "$B/device-key.pem" ]; then
    ssh-keygen -q -t rsa -b 4096 -N "" -m PEM -f "$B/device-key.tmp" >/dev/null
    mv "$B/device-key.tmp" "$B/device-key.pem" && rm -f "$B/device-key.tmp.pub"
  fi
  # The snaps and the store every time (seconds; the gadget's bytes are reproducible): the
  # store's contents are not part of the image's key, tests/vm/run pushes them into the guest.
  step brand-snaps snaps
  local key
  key=$(image_key)
  if [ -e "$CACHE/brand.img" ] && [ "$(cat "$B/key" 2>/dev/null)" = "$key" ]; then
    log "test-brand image cached ($key)"
  else
    rm -f "$B/key"
    step brand-image image
    echo "$key" >"$B/key"
  fi
  step brand-kit kit
}

main
