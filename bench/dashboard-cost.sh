#!/usr/bin/env bash
# What an open dashboard page costs the daemon, against one SSE subscriber (docs/dashboard.md).
# Runs the release daemon at a 1 s interval and measures its CPU time over WINDOW seconds (60)
# three ways, ROUNDS times (2): nobody connected, one `curl` on the event stream, the page open in
# headless Chromium (through chromedriver). CPU time is read two ways: the sum of the threads'
# time on CPU from /proc/PID/task/*/schedstat (nanoseconds; the daemon's threads live as long as
# it does at a 1 s interval), and utime + stime of /proc/PID/stat (clock ticks, 10 ms, which also
# counts threads that ended). Memory is Rss from smaps_rollup. Then the size of /v1/history.
# Needs: target/release/pocketses (or BIN=…), curl, python3, ss, chromium and chromedriver.
# A benchmark, not a test: it prints and asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-target/release/pocketses}
window=${WINDOW:-60}
rounds=${ROUNDS:-2}
for tool in curl python3 ss chromium chromedriver; do
  command -v "$tool" >/dev/null || { echo "dashboard-cost: $tool is missing" >&2; exit 1; }
done
[ -x "$bin" ] || { echo "dashboard-cost: build $bin first (cargo build --release)" >&2; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
d=$(mktemp -d)
port=${PORT:-$(free_port)}
driver_port=$(free_port)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$d"' EXIT
POCKETSES_STATE_DIR=$d POCKETSES_SNAPD_SOCKET=$d/no-snapd "$bin" daemon --bind 127.0.0.1 --port 0 \
  --http-port "$port" --interval 1 --ready-file "$d/ready" 2>"$d/log" &
pid=$!
pids+=("$pid")
for _ in $(seq 300); do [ -s "$d/ready" ] && break; sleep 0.1; done
[ -s "$d/ready" ] || { echo "dashboard-cost: the daemon did not start:" >&2; cat "$d/log" >&2; exit 1; }
cpu_ns() { cat /proc/"$pid"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%d\n", s}'; }
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss() { awk '/^Rss:/ {print $2}' "/proc/$pid/smaps_rollup"; }
sample() {
  local n0 n1 t0 t1 sse conns
  n0=$(cpu_ns); t0=$(ticks); sleep "$window"; n1=$(cpu_ns); t1=$(ticks)
  sse=$(curl -s "localhost:$port/metrics" | awk '/^pocketses_sse_streams / {print $2}')
  conns=$(ss -tnH state established "( sport = :$port )" | wc -l)
  echo "$1: $(((n1 - n0) / window / 1000)) µs of CPU per 1 s cycle ($((t1 - t0)) ticks in ${window} s), rss $(rss) kB, sse streams $sse, http connections $conns"
}
chromedriver --port="$driver_port" >"$d/chromedriver.log" 2>&1 &
pids+=($!)
for _ in $(seq 300); do curl -sf "localhost:$driver_port/status" >/dev/null && break; sleep 0.1; done
sleep 5
echo "daemon $bin, interval 1 s, window ${window} s, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$rounds"); do
  sample "round $round, nobody"
  curl -sN "localhost:$port/v1/metrics/stream" >/dev/null &
  c=$!
  sleep 2
  sample "round $round, one curl on the event stream"
  kill $c; wait $c 2>/dev/null || true
  caps="{\"capabilities\":{\"alwaysMatch\":{\"goog:chromeOptions\":{\"binary\":\"$(command -v chromium)\",\"args\":[\"--headless=new\",\"--no-sandbox\",\"--disable-gpu\",\"--disable-dev-shm-usage\",\"--user-data-dir=$d/profile$round\"]}}}}"
  sid=$(curl -s -XPOST "localhost:$driver_port/session" -H 'Content-Type: application/json' -d "$caps" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["value"]["sessionId"])')
  curl -s -XPOST "localhost:$driver_port/session/$sid/url" -H 'Content-Type: application/json' \
    -d "{\"url\":\"http://127.0.0.1:$port/\"}" >/dev/null
  sleep 2
  sample "round $round, the page open in chromium"
  curl -s -XDELETE "localhost:$driver_port/session/$sid" >/dev/null
done
n=$(curl -s "localhost:$port/v1/history" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["t"]))')
raw=$(curl -s "localhost:$port/v1/history" | wc -c)
gz=$(curl -s -H 'Accept-Encoding: gzip' "localhost:$port/v1/history" | wc -c)
echo "history: $n points, $raw bytes of JSON, $gz bytes gzip; daemon rss $(rss) kB"
echo "(the ring's memory for a full hour: examples/checks_bench.rs prints it)"
