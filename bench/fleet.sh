#!/usr/bin/env bash
# The fleet benchmark (issue 11, "Performance"): pocketses' DDI client against SWUpdate's
# suricatta, both polling one gooseBit 0.2.12 on loopback. Run by hand (bench/run's run_fleet
# calls it after building), never in CI.
#
#   BIN=target/release/pocketses DL=target/release/examples/fleet_download bash bench/fleet.sh
#   options (environment): WINDOW=300 (seconds of polling measured), SIZE_MB=200, REPEATS=3,
#   DOWNLOAD=0 (skip the download), BEFORE=path/to/other/pocketses (an A/B: a second daemon with
#   the fleet client on, from another build, polls in the same run and is measured the same way)
#
# One gooseBit answers with a polling sleep of 1 s (GOOSEBIT_POLL_TIME=00:00:01), and three
# clients poll it at once:
#   A  the pocketses daemon with the fleet client on (fleet.url, fleet.trusted-keys, fleet.enabled)
#   B  the same daemon without any fleet.* key (the baseline A is compared with)
#   S  SWUpdate 2022.12's suricatta (three processes), from .ci/install.d/suricatta.sh
# After a minute of warm-up, WINDOW seconds are measured:
#   - CPU: utime+stime of /proc/PID/stat (for S summed over its processes; dead threads count),
#     so CPU time is what a poll costs whatever the machine's load;
#   - polls: the GETs of each device's controller base, counted by a loopback proxy in front of
#     gooseBit for each client (gooseBit 0.2.12 logs no access lines);
#   - RSS: Rss of smaps_rollup at the end (S: the sum over its processes, and their Pss).
# pocketses' CPU per poll is (A − B) / A's polls: the daemon's own collection cycle (at
# --interval 60 in both) is taken out. Added RSS is A − B.
# Then the download: a 200 MB bundle uploaded to the same gooseBit and assigned, downloaded
# over loopback from its DDI link by `curl -o` and by pocketses' downloader
# (examples/fleet_download.rs: download::fetch with the sha1 gooseBit declares checked while
# streaming, and the fsync before the rename), alternately REPEATS times each. Wall time is
# noisy on a shared machine: the best run of each is compared, and each run's CPU is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/pocketses}
DL=${DL:-target/release/examples/fleet_download}
WINDOW=${WINDOW:-300}
SIZE_MB=${SIZE_MB:-200}
REPEATS=${REPEATS:-3}
DOWNLOAD=${DOWNLOAD:-1}
BEFORE=${BEFORE:-}
gb=/var/cache/pocketses-ci/goosebit
sw=/var/cache/pocketses-ci/swupdate
[ -x "$gb/bin/uvicorn" ] || { echo "fleet bench: gooseBit missing: bash .ci/install.d/goosebit.sh" >&2; exit 1; }
[ -x "$sw/usr/bin/swupdate" ] || { echo "fleet bench: swupdate missing: bash .ci/install.d/suricatta.sh" >&2; exit 1; }
[ -x "$BIN" ] && [ -x "$DL" ] || { echo "fleet bench: build $BIN and $DL first" >&2; exit 1; }
BIN=$(realpath "$BIN"); DL=$(realpath "$DL")
if [ -n "$BEFORE" ]; then
  [ -x "$BEFORE" ] || { echo "fleet bench: BEFORE=$BEFORE is not an executable" >&2; exit 1; }
  BEFORE=$(realpath "$BEFORE")
fi

work=$(mktemp -d -p "${TMPDIR:-/var/tmp}" pocketses-fleet-bench.XXXXXX)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
json() { python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"; }

# --- gooseBit ---------------------------------------------------------------------------------
port=$(free_port)
G=http://127.0.0.1:$port
sp=$("$gb/bin/python" -c 'import goosebit, os; print(os.path.dirname(goosebit.__file__))')
mkdir -p "$work/gbdata/artifacts" "$work/gbwork"
export GOOSEBIT_DB_URI=sqlite:///$work/gbdata/db.sqlite3 GOOSEBIT_ARTIFACTS_DIR=$work/gbdata/artifacts
export GOOSEBIT_POLL_TIME=00:00:01 GOOSEBIT_SECRET_KEY=pocketses-bench-not-a-secret
(cd "$work/gbwork" && "$gb/bin/aerich" init -t goosebit.db.config.TORTOISE_CONF --location "$sp/db/migrations" \
  && "$gb/bin/aerich" upgrade) >"$work/migrate.log" 2>&1 || { cat "$work/migrate.log" >&2; exit 1; }
(cd "$work/gbwork" && exec "$gb/bin/uvicorn" goosebit:app --host 127.0.0.1 --port "$port") >"$work/gb.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do curl -sf -o /dev/null "$G/login" && break; sleep 0.1; done
curl -sf -o /dev/null "$G/login" || { echo "fleet bench: gooseBit did not start" >&2; tail "$work/gb.log" >&2; exit 1; }
curl -sf -o /dev/null -XPOST "$G/setup" -d 'username=admin@goosebit.local&password=admin'
token=$(curl -sf -XPOST "$G/login" -d 'username=admin@goosebit.local&password=admin' | json 'd["access_token"]')
api() { curl -sf -H "Authorization: Bearer $token" "$@"; }
echo "fleet bench: gooseBit $("$gb/bin/pip" show goosebit 2>/dev/null | awk '/^Version/ {print $2}') on $G, polling sleep 00:00:01"

# A counting proxy per client: forwards bytes both ways, counts "GET /DEFAULT/controller/v1/ID "
# request lines, and writes the count to FILE after each.
proxy() { # LISTEN_PORT FILE
  python3 - "$port" "$1" "$2" <<'PY' &
import asyncio, sys
up, listen, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
count = 0
open(out, 'w').write('0')
async def pipe(r, w, up_dir):
    global count
    try:
        while data := await r.read(65536):
            if up_dir:
                n = data.count(b'GET /DEFAULT/controller/v1/')
                n -= data.count(b'GET /DEFAULT/controller/v1/downloader')
                if n:
                    count += n
                    open(out, 'w').write(str(count))
            w.write(data)
            await w.drain()
    except Exception:
        pass
    finally:
        w.close()
async def conn(r, w):
    ur, uw = await asyncio.open_connection('127.0.0.1', up)
    await asyncio.gather(pipe(r, uw, True), pipe(ur, w, False))
async def main():
    srv = await asyncio.start_server(conn, '127.0.0.1', listen)
    await srv.serve_forever()
asyncio.run(main())
PY
  pids+=($!)
}
pport=$(free_port); sport=$(free_port); oport=$(free_port)
proxy "$pport" "$work/polls-pocketses"; proxy "$sport" "$work/polls-suricatta"
[ -z "$BEFORE" ] || proxy "$oport" "$work/polls-before"
sleep 1

# --- the three clients ------------------------------------------------------------------------
POCKETSES_KEYS_DIR=$work/keys "$BIN" key create --type ed25519 bench >/dev/null
key=$(POCKETSES_KEYS_DIR=$work/keys "$BIN" key export bench)
daemon() { # BIN NAME SETS…
  local bin=$1 name=$2; shift 2
  local dir=$work/$name; mkdir -p "$dir"
  local sets=() s
  for s in "$@"; do sets+=(--set "$s"); done
  RUST_LOG=warn "$bin" daemon --bind 127.0.0.1 --port "$(free_port)" --http-port "$(free_port)" \
    --interval 60 --state-dir "$dir" "${sets[@]}" >"$dir/daemon.log" 2>&1 &
  pids+=($!)
  echo $! >"$dir/pid"
}
# A key that verifies nothing here: no bundle is offered to A.
daemon "$BIN" fleet "fleet.url=http://127.0.0.1:$pport" fleet.controller-id=pocketses-bench "fleet.trusted-keys=$key" fleet.enabled=true
daemon "$BIN" bare
[ -z "$BEFORE" ] || daemon "$BEFORE" before "fleet.url=http://127.0.0.1:$oport" fleet.controller-id=pocketses-before "fleet.trusted-keys=$key" fleet.enabled=true
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=bench -days 2 -keyout "$work/sw.key" -out "$work/cert.pem" >/dev/null 2>&1
mkdir -p "$work/swtmp"
cat >"$work/swupdate.cfg" <<EOF
globals:   { verbose = true; loglevel = 3; public-key-file = "$work/cert.pem"; };
identify:  ( { name = "sw_version"; value = "1.0.0"; }, { name = "hw_boardname"; value = "peerboard"; }, { name = "hw_revision"; value = "1"; } );
suricatta: { tenant = "DEFAULT"; id = "suricatta-bench"; url = "http://127.0.0.1:$sport"; polldelay = 1; };
EOF
TMPDIR=$work/swtmp LD_LIBRARY_PATH=$sw/usr/lib/$(uname -m)-linux-gnu \
  "$sw/usr/bin/swupdate" -f "$work/swupdate.cfg" -u '' >"$work/swupdate.log" 2>&1 &
pids+=($!)
sw_pid=$!
fleet_pid=$(cat "$work/fleet/pid"); bare_pid=$(cat "$work/bare/pid")
echo "fleet bench: pocketses with fleet pid $fleet_pid, without pid $bare_pid, suricatta pid $sw_pid"

# /proc figures of a process tree: CPU ticks (utime+stime), Rss and Pss (kB), process count.
tree() { # PID → "ticks rss pss procs"
  python3 - "$1" <<'PY'
import os, sys
root = int(sys.argv[1])
kids = {}
for p in os.listdir('/proc'):
    if p.isdigit():
        try:
            f = open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()
            kids.setdefault(int(f[1]), []).append(int(p))
        except OSError:
            pass
todo, ticks, rss, pss, n = [root], 0, 0, 0, 0
while todo:
    p = todo.pop()
    todo += kids.get(p, [])
    try:
        f = open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()
        ticks += int(f[11]) + int(f[12])
        for line in open(f'/proc/{p}/smaps_rollup'):
            k, v = line.split(':', 1)
            if k == 'Rss': rss += int(v.split()[0])
            if k == 'Pss': pss += int(v.split()[0])
        n += 1
    except OSError:
        pass
print(ticks, rss, pss, n)
PY
}
polls() { cat "$work/polls-$1"; }

sleep 60
for id in pocketses suricatta ${BEFORE:+before}; do
  [ "$(polls $id)" -gt 10 ] || { echo "fleet bench: $id does not poll" >&2; tail -n 20 "$work/gb.log" "$work/swupdate.log" "$work/fleet/daemon.log" >&2; exit 1; }
done
read -r a0 _ _ _ < <(tree "$fleet_pid"); read -r b0 _ _ _ < <(tree "$bare_pid"); read -r s0 _ _ _ < <(tree "$sw_pid")
pa0=$(polls pocketses); ps0=$(polls suricatta)
if [ -n "$BEFORE" ]; then before_pid=$(cat "$work/before/pid"); read -r o0 _ _ _ < <(tree "$before_pid"); po0=$(polls before); fi
echo "fleet bench: measuring $WINDOW s of polling"
sleep "$WINDOW"
read -r a1 arss apss _ < <(tree "$fleet_pid"); read -r b1 brss bpss _ < <(tree "$bare_pid")
read -r s1 srss spss sn < <(tree "$sw_pid")
pa=$(( $(polls pocketses) - pa0 )); ps=$(( $(polls suricatta) - ps0 ))
hz=$(getconf CLK_TCK)
if [ -n "$BEFORE" ]; then
  read -r o1 orss _ _ < <(tree "$before_pid"); po=$(( $(polls before) - po0 ))
  python3 - "$hz" "$po" $((o1 - o0)) $((b1 - b0)) "$orss" "$brss" <<'PY'
import sys
hz, po, do, db, orss, brss = map(int, sys.argv[1:])
ms = lambda ticks: ticks * 1000 / hz
print(f"the BEFORE build, fleet client on: {po} polls, CPU {ms(do):.0f} ms; per poll {ms(do - db) / max(po, 1):.2f} ms (with the collection: {ms(do) / max(po, 1):.2f} ms); added RSS {orss - brss} kB")
PY
fi
python3 - "$hz" "$pa" "$ps" $((a1 - a0)) $((b1 - b0)) $((s1 - s0)) "$arss" "$apss" "$brss" "$bpss" "$srss" "$spss" "$sn" <<'PY'
import sys
hz, pa, ps, da, db, ds, arss, apss, brss, bpss, srss, spss, sn = map(int, sys.argv[1:])
ms = lambda ticks: ticks * 1000 / hz
print(f"polls in the window: pocketses {pa}, suricatta {ps}")
print(f"CPU in the window: pocketses with fleet {ms(da):.0f} ms, without {ms(db):.0f} ms; suricatta {ms(ds):.0f} ms")
print(f"CPU per poll: pocketses {ms(da - db) / max(pa, 1):.2f} ms (with the collection: {ms(da) / max(pa, 1):.2f} ms), suricatta {ms(ds) / max(ps, 1):.2f} ms")
print(f"RSS: pocketses with fleet {arss} kB (Pss {apss}), without {brss} kB (Pss {bpss}): added {arss - brss} kB (Pss {apss - bpss})")
print(f"RSS: suricatta {srss} kB over {sn} processes (Pss {spss} kB)")
PY

# --- the download -----------------------------------------------------------------------------
[ "$DOWNLOAD" != 0 ] || exit 0
echo "fleet bench: a ${SIZE_MB} MB bundle"
head -c $((SIZE_MB * 1000 * 1000)) /dev/urandom >"$work/big_1.snap"
"$BIN" bundle create --version 9.0.0 --hardware pocketses-pc "$work/big_1.snap" -o "$work/big.swu" >/dev/null
rm "$work/big_1.snap"
id=$(api -XPUT "$G/api/v1/software" -F "file=@$work/big.swu" | json 'd["id"]')
size=$(stat -c %s "$work/big.swu"); sha1=$(sha1sum "$work/big.swu" | cut -d' ' -f1); rm "$work/big.swu"
D=$G/DEFAULT/controller/v1/downloader
curl -sf "$D" >/dev/null
curl -sf -XPUT "$D/configData" -H 'Content-Type: application/json' \
  -d '{"mode": "merge", "data": {"hw_boardname": "pocketses-pc", "hw_revision": "default"}}' >/dev/null
api -XPATCH "$G/api/v1/devices" -H 'Content-Type: application/json' -d "{\"devices\": [\"downloader\"], \"software\": \"$id\"}" >/dev/null
deployment=$(curl -sf "$D" | json 'd["_links"]["deploymentBase"]["href"]')
href=$(curl -sf "$deployment" | json 'd["deployment"]["chunks"][0]["artifacts"][0]["_links"]["download"]["href"]')
echo "fleet bench: $size bytes, sha1 $sha1, from $href"
TIMEFORMAT='%R %U %S'
best_curl=999999; best_dl=999999
for run in $(seq "$REPEATS"); do
  rm -f "$work/curl.swu"
  t=$( { time curl -sf -o "$work/curl.swu" "$href" >/dev/null; } 2>&1 )
  read -r wall user sys <<<"$t"
  [ "$(stat -c %s "$work/curl.swu")" = "$size" ] || { echo "fleet bench: curl got a short file" >&2; exit 1; }
  echo "curl -o run $run: $size bytes in $wall s ($(python3 -c "print(f'{$size / $wall / 1e6:.1f}')") MB/s), cpu $(python3 -c "print(f'{$user + $sys:.3f}')") s"
  best_curl=$(python3 -c "print(min($best_curl, $wall))")
  rm -f "$work/curl.swu"
  out=$("$DL" "$href" "$size" "sha1:$sha1" "$work/dl.swu" 1)
  echo "${out%%$'\n'*}" | sed "s/run 1/run $run/"
  wall=$(sed -n 's/.* in \([0-9.]*\) s .*/\1/p' <<<"$out" | head -1)
  best_dl=$(python3 -c "print(min($best_dl, $wall))")
done
python3 - "$size" "$best_curl" "$best_dl" <<'PY'
import sys
size, c, d = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
print(f"download, best of each: curl -o {size / c / 1e6:.1f} MB/s, pocketses (sha1 checked, fsync) {size / d / 1e6:.1f} MB/s: {100 * c / d:.0f} % of curl")
PY
