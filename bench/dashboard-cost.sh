#!/usr/bin/env bash
# What an open dashboard page costs the daemon, against one SSE subscriber (docs/dashboard.md).
# Runs the release daemon at a 1 s interval and measures its CPU time (utime + stime, clock ticks)
# over WINDOW seconds (60) three ways, twice: nobody connected, one `curl` on the event stream,
# the page open in headless Chromium (through chromedriver). Then the size of /v1/history.
# Needs: target/release/pocketses (or BIN=…), curl, python3, chromium and chromedriver. A benchmark, not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-target/release/pocketses}
window=${WINDOW:-60}
d=$(mktemp -d)
port=${PORT:-19288}
driver_port=$((port + 1))
POCKETSES_STATE_DIR=$d POCKETSES_SNAPD_SOCKET=$d/no-snapd "$bin" daemon --bind 127.0.0.1 --port 0 \
  --http-port "$port" --interval 1 --ready-file "$d/ready" 2>"$d/log" &
pid=$!
trap 'kill $pid 2>/dev/null || true; rm -rf "$d"' EXIT
until [ -s "$d/ready" ]; do sleep 0.1; done
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
sample() {
  local t0 t1 sse conns
  t0=$(ticks); sleep "$window"; t1=$(ticks)
  sse=$(curl -s "localhost:$port/metrics" | awk '/^pocketses_sse_streams / {print $2}')
  conns=$(ss -tnH state established "( sport = :$port )" | wc -l)
  echo "$1: $((t1 - t0)) ticks in ${window} s, rss $(rss) kB, sse streams $sse, http connections $conns"
}
chromedriver --port=$driver_port >"$d/chromedriver.log" 2>&1 &
cd_pid=$!
trap 'kill $pid $cd_pid 2>/dev/null || true; rm -rf "$d"' EXIT
until curl -sf "localhost:$driver_port/status" >/dev/null; do sleep 0.1; done
sleep 5
for round in 1 2; do
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
