# gooseBit for the fleet tasks (sourced by tests/vm/run after lib.sh and vm.sh); they run in the
# test-brand VM's phase, so $RUN is that phase's run directory ($CACHE/run-brand).
#
# A real gooseBit 0.2.12 (the venv .ci/install.d/goosebit.sh builds) runs on a free port of the
# host's loopback, with its data in $RUN/goosebit. The guest reaches it at GOOSEBIT_GUEST_URL
# through QEMU's user network: a `guestfwd` rule on the netdev (restrict=on allows explicit
# forwarding rules and nothing else) runs tests/vm/relay.py for each connection the guest opens
# to 10.0.2.100:8080, which connects to 127.0.0.1 at the port in $RUN/goosebit.port. No traffic
# leaves the machine: the relay connects to loopback only.
#
# The tasks (tests/spread/fleet/goosebit-*) find the server in tests/spread/.goosebit/env of the
# project copy (GOOSEBIT_URL, GOOSEBIT_USER, GOOSEBIT_PASSWORD, GOOSEBIT_POLL_TIME); without
# that file they fail: they only run where the harness started gooseBit.

GOOSEBIT_VENV=${POCKETSES_GOOSEBIT:-/var/cache/pocketses-ci/goosebit}
GOOSEBIT_GUEST_ADDR=10.0.2.100
GOOSEBIT_GUEST_PORT=8080
GOOSEBIT_GUEST_URL=http://$GOOSEBIT_GUEST_ADDR:$GOOSEBIT_GUEST_PORT
# The admin user /setup creates (gooseBit is on loopback only; the guest logs in with it).
GOOSEBIT_USER=admin@goosebit.local
GOOSEBIT_PASSWORD=admin
# How often gooseBit tells a device to poll (the daemon adds ±10 %, and polls every 5 s while an
# action runs); short, so the tasks wait seconds for the daemon, not minutes.
GOOSEBIT_POLL_TIME=00:00:03
GOOSEBIT_PID=

# The server's data, log and pid file: in the run directory of the phase that started it ($RUN
# is read at each call: the test-brand phase has its own).
goosebit_dir() { echo "$RUN/goosebit"; }

# goosebit_netdev: the guestfwd option for vm_boot's netdev (VM_NETDEV_EXTRA).
goosebit_netdev() {
  printf 'guestfwd=tcp:%s:%s-cmd:python3 %s %s %s' "$GOOSEBIT_GUEST_ADDR" "$GOOSEBIT_GUEST_PORT" \
    "$VM_DIR/relay.py" "$RUN/goosebit.port" "$(goosebit_dir)/relay.log"
}

# goosebit_start: migrations, then uvicorn on a free loopback port, in the background (its own
# process group, pid in $RUN/goosebit/pid). goosebit_ready waits for it and creates the admin.
goosebit_start() {
  [ -x "$GOOSEBIT_VENV/bin/uvicorn" ] ||
    die "gooseBit is missing at $GOOSEBIT_VENV (run .ci/install.d/goosebit.sh): the fleet tasks need it"
  goosebit_stop
  local GOOSEBIT_DIR
  GOOSEBIT_DIR=$(goosebit_dir)
  rm -rf "$GOOSEBIT_DIR" "$RUN/goosebit-guest"
  mkdir -p "$GOOSEBIT_DIR/data/artifacts" "$GOOSEBIT_DIR/work"
  local port site
  port=$(free_port)
  site=$("$GOOSEBIT_VENV/bin/python" -c 'import goosebit, os; print(os.path.dirname(goosebit.__file__))' 2>/dev/null)
  [ -n "$site" ] || die "gooseBit at $GOOSEBIT_VENV does not import"
  # setsid: its own process group, so that goosebit_stop ends aerich or uvicorn, whichever runs.
  (
    cd "$GOOSEBIT_DIR/work" || exit 1
    export GOOSEBIT_DB_URI=sqlite:///$GOOSEBIT_DIR/data/db.sqlite3
    export GOOSEBIT_ARTIFACTS_DIR=$GOOSEBIT_DIR/data/artifacts
    export GOOSEBIT_POLL_TIME GOOSEBIT_SECRET_KEY=pocketses-vm-not-a-secret
    # Device authentication in `setup` mode: gooseBit records the TargetToken a device sends.
    export GOOSEBIT_DEVICE_AUTH__ENABLE=true GOOSEBIT_DEVICE_AUTH__MODE=setup
    exec setsid bash -c '"$1/bin/aerich" init -t goosebit.db.config.TORTOISE_CONF --location "$2/db/migrations" &&
      "$1/bin/aerich" upgrade && exec "$1/bin/uvicorn" goosebit:app --host 127.0.0.1 --port "$3"' \
      goosebit "$GOOSEBIT_VENV" "$site" "$port"
  ) >"$GOOSEBIT_DIR/goosebit.log" 2>&1 9>&- &
  GOOSEBIT_PID=$!
  echo "$GOOSEBIT_PID" >"$GOOSEBIT_DIR/pid"
  echo "$port" >"$RUN/goosebit.port"
  log "gooseBit starting on 127.0.0.1:$port (the guest's $GOOSEBIT_GUEST_URL; log $GOOSEBIT_DIR/goosebit.log)"
}

# goosebit_ready: wait (bounded) until gooseBit answers, create the admin user, and write the
# guest's view of it for the tasks ($RUN/goosebit-guest/env, pushed as tests/spread/.goosebit/env).
goosebit_ready() {
  local port url GOOSEBIT_DIR
  GOOSEBIT_DIR=$(goosebit_dir)
  port=$(cat "$RUN/goosebit.port")
  url=http://127.0.0.1:$port
  local deadline=$((SECONDS + 300))
  until curl -sf -o /dev/null -m 5 "$url/login"; do
    kill -0 "$GOOSEBIT_PID" 2>/dev/null || { tail -20 "$GOOSEBIT_DIR/goosebit.log" >&2; die "gooseBit exited"; }
    ((SECONDS < deadline)) || { tail -20 "$GOOSEBIT_DIR/goosebit.log" >&2; die "gooseBit did not answer within 300 s"; }
    sleep 1
  done
  curl -sf -o /dev/null -m 30 -XPOST "$url/setup" -d "username=$GOOSEBIT_USER&password=$GOOSEBIT_PASSWORD" ||
    die "gooseBit: /setup failed"
  mkdir -p "$RUN/goosebit-guest"
  printf 'GOOSEBIT_URL=%s\nGOOSEBIT_USER=%s\nGOOSEBIT_PASSWORD=%s\nGOOSEBIT_POLL_TIME=%s\n' \
    "$GOOSEBIT_GUEST_URL" "$GOOSEBIT_USER" "$GOOSEBIT_PASSWORD" "$GOOSEBIT_POLL_TIME" >"$RUN/goosebit-guest/env"
  log "gooseBit ready"
}

# goosebit_stop: end the gooseBit this harness started (its process group), if any.
goosebit_stop() {
  local pid GOOSEBIT_DIR
  GOOSEBIT_DIR=$(goosebit_dir)
  pid=${GOOSEBIT_PID:-$(cat "$GOOSEBIT_DIR/pid" 2>/dev/null || true)}
  [ -n "$pid" ] || return 0
  # Only the process this harness started (a pid file of an earlier run may name another by now).
  if kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE 'uvicorn goosebit|aerich|setsid bash'; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    local i
    for i in $(seq 10); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$GOOSEBIT_DIR/pid" "$RUN/goosebit.port"
  rm -rf "$RUN/goosebit-guest"
  GOOSEBIT_PID=
}
